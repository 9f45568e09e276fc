"""A connector pane does not ship, written as a third party writes one in a package of its own:
the connector (``connector.py``), its vendor answered by respx in the shapes the vendor
documents (``vendor.py``), and pane's connector contract run against it (``test_contract.py``).
"""
