"""The store format, shared by its writer (:mod:`david_data.convert`) and its reader
(:mod:`david_data.store`), neither of which imports the other: on-disk layout
(:mod:`.layout`), shard index (:mod:`.shard`), chunk codecs and their zarr entry points
(:mod:`.codecs`, :mod:`.zarr_codecs`, :mod:`.imagecodec`), and the metadata table's
schema (:mod:`.metadata`)."""
