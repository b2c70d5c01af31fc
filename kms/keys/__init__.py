"""kms.keys: what a key is, independent of storage and protocols: the
ciphertext blob format and the encryption context. Pure, no I/O."""
