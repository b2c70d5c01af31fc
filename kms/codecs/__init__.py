"""Wire formats shared by more than one layer, apart from the AEAD
primitive: each module reads and writes one text or binary format.

- transit_text: "vault:v<N>:<body>";
- b64text: strict base64 with Go's rules and wording;
- transit_b64: base64 items to transit texts and back;
- transit_json: the transit JSON batch and single bodies, read and
  answered natively;
- bulk_msgpack: the bulk route's msgpack requests, and bin32 framing.

The native ones run over the engine's key contexts (kms._native; the C side
is csrc/kms_codecs.h) and take their Python twins on the fallback backend;
they sit beside kms.aead and below the service and the adapters."""
