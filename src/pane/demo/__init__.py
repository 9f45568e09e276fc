"""The demo: a simulator of fictional vendors, and the seeding that links them."""
