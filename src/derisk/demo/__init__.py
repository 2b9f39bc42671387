"""The demo: a generated capture of a realistic site, so derisk can be seen working in a minute."""
