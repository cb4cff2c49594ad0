"""`just bench`: measurements of Tonestream on real embedded services, printed beside targets."""
