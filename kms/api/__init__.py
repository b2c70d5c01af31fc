"""kms.api: the HTTP front end. app.py builds the Starlette app; each
protocol is one subpackage (tencent/ for the Tencent Cloud KMS Action API).
Imports kms.service, kms.errors and starlette; never kms.store or kms.aead."""
