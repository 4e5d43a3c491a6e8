"""An example nfzoo plugin, written as an outsider would: only the public nfzoo API is used."""
