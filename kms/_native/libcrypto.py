"""OpenSSL's libcrypto (3.0 or newer), reached through cffi in ABI mode, for
SM2 (GB/T 32918): `cryptography` offers SM3 and SM4 but not the SM2 curve.

Why libcrypto: it is the maintained SM2 implementation most machines already
have (Python's own ssl module links it), it signs with the SM3-based Z value
and the signer id, and encrypts in the GM/T 0009 ASN.1 form; its scalar
arithmetic is constant-time, which a pure-Python implementation cannot be.
ABI mode needs no headers at build time: the library is opened at first use.
``lib`` is None, and ``LOAD_ERROR`` says why, when no usable libcrypto is
found (then SM2 is not offered).
"""
import ctypes.util
from typing import Any, Optional

import cffi

ffi = cffi.FFI()
ffi.cdef("""
typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;
typedef struct ec_key_st EC_KEY;
typedef struct ec_group_st EC_GROUP;
typedef struct ec_point_st EC_POINT;
typedef struct bignum_st BIGNUM;
typedef struct bignum_ctx BN_CTX;
typedef struct engine_st ENGINE;

unsigned long OpenSSL_version_num(void);
EC_KEY *EC_KEY_new_by_curve_name(int nid);
const EC_GROUP *EC_KEY_get0_group(const EC_KEY *key);
int EC_KEY_set_private_key(EC_KEY *key, const BIGNUM *prv);
int EC_KEY_set_public_key(EC_KEY *key, const EC_POINT *pub);
int EC_KEY_check_key(const EC_KEY *key);
void EC_KEY_free(EC_KEY *key);
EC_POINT *EC_POINT_new(const EC_GROUP *group);
void EC_POINT_free(EC_POINT *point);
int EC_POINT_mul(const EC_GROUP *group, EC_POINT *r, const BIGNUM *n, const EC_POINT *q,
                 const BIGNUM *m, BN_CTX *ctx);
int EC_POINT_oct2point(const EC_GROUP *group, EC_POINT *p, const unsigned char *buf, size_t len,
                       BN_CTX *ctx);
size_t EC_POINT_point2oct(const EC_GROUP *group, const EC_POINT *p, int form, unsigned char *buf,
                          size_t len, BN_CTX *ctx);
BIGNUM *BN_bin2bn(const unsigned char *s, int len, BIGNUM *ret);
void BN_clear_free(BIGNUM *a);
EVP_PKEY *EVP_PKEY_new(void);
int EVP_PKEY_assign(EVP_PKEY *pkey, int type, void *key);
int EVP_PKEY_get_id(const EVP_PKEY *pkey);
void EVP_PKEY_free(EVP_PKEY *key);
EVP_PKEY_CTX *EVP_PKEY_CTX_new(EVP_PKEY *pkey, ENGINE *e);
void EVP_PKEY_CTX_free(EVP_PKEY_CTX *ctx);
int EVP_PKEY_CTX_set1_id(EVP_PKEY_CTX *ctx, const void *id, int len);
int EVP_PKEY_sign_init(EVP_PKEY_CTX *ctx);
int EVP_PKEY_sign(EVP_PKEY_CTX *ctx, unsigned char *sig, size_t *siglen, const unsigned char *tbs,
                  size_t tbslen);
int EVP_PKEY_verify_init(EVP_PKEY_CTX *ctx);
int EVP_PKEY_verify(EVP_PKEY_CTX *ctx, const unsigned char *sig, size_t siglen,
                    const unsigned char *tbs, size_t tbslen);
int EVP_PKEY_encrypt_init(EVP_PKEY_CTX *ctx);
int EVP_PKEY_encrypt(EVP_PKEY_CTX *ctx, unsigned char *out, size_t *outlen, const unsigned char *in,
                     size_t inlen);
int EVP_PKEY_decrypt_init(EVP_PKEY_CTX *ctx);
int EVP_PKEY_decrypt(EVP_PKEY_CTX *ctx, unsigned char *out, size_t *outlen, const unsigned char *in,
                     size_t inlen);
EVP_MD_CTX *EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(EVP_MD_CTX *ctx);
void EVP_MD_CTX_set_pkey_ctx(EVP_MD_CTX *ctx, EVP_PKEY_CTX *pctx);
const EVP_MD *EVP_sm3(void);
int EVP_DigestSignInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type, ENGINE *e,
                       EVP_PKEY *pkey);
int EVP_DigestSign(EVP_MD_CTX *ctx, unsigned char *sigret, size_t *siglen, const unsigned char *tbs,
                   size_t tbslen);
int EVP_DigestVerifyInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type, ENGINE *e,
                         EVP_PKEY *pkey);
int EVP_DigestVerify(EVP_MD_CTX *ctx, const unsigned char *sigret, size_t siglen,
                     const unsigned char *tbs, size_t tbslen);
int i2d_PUBKEY(const EVP_PKEY *a, unsigned char **pp);
void CRYPTO_free(void *ptr, const char *file, int line);
void ERR_clear_error(void);
""")

NID_SM2 = 1172  # the SM2 curve's NID, also EVP_PKEY_SM2
EVP_PKEY_EC = 408
POINT_UNCOMPRESSED = 4
MIN_VERSION = 0x30000000  # 3.0: SM2 as its own key type, EVP_PKEY_CTX_set1_id

lib: Any = None
LOAD_ERROR: Optional[str] = None


def _open() -> None:
    global lib, LOAD_ERROR
    names = [name for name in ("libcrypto.so.3", ctypes.util.find_library("crypto")) if name]
    for name in names:
        try:
            opened = ffi.dlopen(name)
            if opened.OpenSSL_version_num() < MIN_VERSION:
                LOAD_ERROR = f"{name} is older than OpenSSL 3.0"
                continue
            probe = opened.EC_KEY_new_by_curve_name(NID_SM2)
            if probe == ffi.NULL:
                LOAD_ERROR = f"{name} has no SM2 curve"
                opened.ERR_clear_error()
                continue
            opened.EC_KEY_free(probe)
        except (OSError, AttributeError) as exc:
            LOAD_ERROR = f"{name}: {exc}"
            continue
        lib, LOAD_ERROR = opened, None
        return
    LOAD_ERROR = LOAD_ERROR or "no libcrypto found"


_open()
