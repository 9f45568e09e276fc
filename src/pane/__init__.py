"""pane: the reseller's single pane of glass over every vendor and distributor."""

__version__ = "0.1.0"
