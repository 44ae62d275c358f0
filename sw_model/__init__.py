"""hwgen golden models: number formats, unit configs, bit-exact numpy models. Never imports amaranth."""
