"""SM2 (GB/T 32918) on OpenSSL's libcrypto (kms._native.libcrypto):
signatures with the SM3-based Z value over a signer id, and public-key
encryption. Keys are the 32-byte private scalar d; public keys are the
uncompressed point 04 || x || y.

Ciphertexts come in two layouts of the same C1 (the point), C3 (the SM3
hash) and C2 (the masked message): GM/T 0009 ASN.1, SEQUENCE {x INTEGER,
y INTEGER, C3 OCTET STRING, C2 OCTET STRING}, which libcrypto reads and
writes, and raw C1 || C3 || C2, which the Tencent SDK uses by default.
"""
import os
from typing import Any, Callable, Optional, Tuple

from kms import errors
from kms._native import libcrypto

DEFAULT_SIGNER_ID = b"1234567812345678"  # GB/T 35276, section 5.3, and Tencent's SM2DSA
ORDER = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
POINT_BYTES = 65
HASH_BYTES = 32
MAX_SIGNATURE_BYTES = 72  # DER SEQUENCE of two INTEGERs of at most 33 bytes


class SM2Unavailable(errors.BackendUnavailable):
    code = "sm2_unavailable"


class SM2Error(errors.InvalidRequest):
    """Bad SM2 input: a point not on the curve, a ciphertext that does not
    parse or decrypt."""

    code = "sm2_error"


def available() -> bool:
    return libcrypto.lib is not None


def _lib() -> Any:
    if libcrypto.lib is None:
        raise SM2Unavailable(f"SM2 needs OpenSSL 3 libcrypto: {libcrypto.LOAD_ERROR}")
    return libcrypto.lib


def generate() -> bytes:
    """A private scalar d in [1, n - 2] (GB/T 32918.1, 6.1)."""
    while True:
        d = os.urandom(32)
        if 1 <= int.from_bytes(d, "big") <= ORDER - 2:
            return d


class _Key:
    """An EVP_PKEY of type SM2, freed (its scalar cleared by EC_KEY_free)
    when the object goes."""

    def __init__(self, d: Optional[bytes] = None, point: Optional[bytes] = None) -> None:
        lib, ffi = _lib(), libcrypto.ffi
        ec = lib.EC_KEY_new_by_curve_name(libcrypto.NID_SM2)
        if ec == ffi.NULL:
            raise SM2Unavailable("libcrypto could not make an SM2 key")
        self._pkey = ffi.NULL
        try:
            group = lib.EC_KEY_get0_group(ec)
            public = lib.EC_POINT_new(group)
            try:
                if d is not None:
                    self._set_private(lib, ffi, ec, group, public, d)
                elif point is None or len(point) != POINT_BYTES or point[0] != 4 or \
                        lib.EC_POINT_oct2point(group, public, point, len(point), ffi.NULL) != 1:
                    raise SM2Error("an SM2 public key is the uncompressed point 04 || x || y on the SM2 curve")
                if lib.EC_KEY_set_public_key(ec, public) != 1 or lib.EC_KEY_check_key(ec) != 1:
                    raise SM2Error("not a valid SM2 key")
                self._point = self._encode_point(lib, ffi, group, public)
            finally:
                lib.EC_POINT_free(public)
            pkey = lib.EVP_PKEY_new()
            # assign takes the EC_KEY; on the SM2 curve the EVP_PKEY becomes type SM2.
            if lib.EVP_PKEY_assign(pkey, libcrypto.EVP_PKEY_EC, ec) != 1:
                lib.EVP_PKEY_free(pkey)
                raise SM2Error("libcrypto refused the SM2 key")
            ec = ffi.NULL
            self._pkey = pkey
            if lib.EVP_PKEY_get_id(pkey) != libcrypto.NID_SM2:
                raise SM2Unavailable("libcrypto does not treat keys on the SM2 curve as SM2 keys")
        finally:
            if ec != ffi.NULL:
                lib.EC_KEY_free(ec)
            lib.ERR_clear_error()

    @staticmethod
    def _set_private(lib: Any, ffi: Any, ec: Any, group: Any, public: Any, d: bytes) -> None:
        if len(d) != 32 or not 1 <= int.from_bytes(d, "big") <= ORDER - 2:
            raise SM2Error("an SM2 private key is 32 bytes, 1 to n - 2")
        scratch = ffi.new("unsigned char[32]", d)
        bn = lib.BN_bin2bn(scratch, 32, ffi.NULL)
        ffi.memmove(scratch, bytes(32), 32)
        try:
            if (lib.EC_KEY_set_private_key(ec, bn) != 1
                    or lib.EC_POINT_mul(group, public, bn, ffi.NULL, ffi.NULL, ffi.NULL) != 1):
                raise SM2Error("libcrypto refused the SM2 private key")
        finally:
            lib.BN_clear_free(bn)

    @staticmethod
    def _encode_point(lib: Any, ffi: Any, group: Any, point: Any) -> bytes:
        out = ffi.new("unsigned char[65]")
        if lib.EC_POINT_point2oct(group, point, libcrypto.POINT_UNCOMPRESSED, out, 65, ffi.NULL) != 65:
            raise SM2Error("could not encode the SM2 public key")
        return bytes(out)

    def __del__(self) -> None:
        if getattr(self, "_pkey", None) is not None and libcrypto.lib is not None:
            if self._pkey != libcrypto.ffi.NULL:
                libcrypto.lib.EVP_PKEY_free(self._pkey)

    @property
    def point(self) -> bytes:
        return self._point

    def public_der(self) -> bytes:
        """DER SubjectPublicKeyInfo (id-ecPublicKey on the SM2 curve)."""
        lib, ffi = _lib(), libcrypto.ffi
        out = ffi.new("unsigned char **")
        size = lib.i2d_PUBKEY(self._pkey, out)
        if size <= 0:
            lib.ERR_clear_error()
            raise SM2Error("could not encode the SM2 public key")
        try:
            return bytes(ffi.buffer(out[0], size))
        finally:
            lib.CRYPTO_free(out[0], b"kms", 0)

    def _with_ctx(self, use: Callable[[Any, Any, Any], Any]) -> Any:
        lib, ffi = _lib(), libcrypto.ffi
        ctx = lib.EVP_PKEY_CTX_new(self._pkey, ffi.NULL)
        try:
            return use(lib, ffi, ctx)
        finally:
            lib.EVP_PKEY_CTX_free(ctx)
            lib.ERR_clear_error()

    def _with_md(self, signer_id: bytes, use: Callable[[Any, Any, Any], Any]) -> Any:
        """An EVP_MD_CTX for SM3 with the signer id set (it enters Z)."""
        def run(lib: Any, ffi: Any, ctx: Any) -> Any:
            md = lib.EVP_MD_CTX_new()
            try:
                if lib.EVP_PKEY_CTX_set1_id(ctx, signer_id, len(signer_id)) != 1:
                    raise SM2Error("libcrypto refused the signer id")
                lib.EVP_MD_CTX_set_pkey_ctx(md, ctx)
                return use(lib, ffi, md)
            finally:
                lib.EVP_MD_CTX_set_pkey_ctx(md, ffi.NULL)  # the ctx is freed by _with_ctx
                lib.EVP_MD_CTX_free(md)
        return self._with_ctx(run)

    # ---- signatures --------------------------------------------------------

    def verify(self, signature: bytes, message: bytes, signer_id: bytes = DEFAULT_SIGNER_ID) -> bool:
        def run(lib: Any, ffi: Any, md: Any) -> bool:
            if lib.EVP_DigestVerifyInit(md, ffi.NULL, lib.EVP_sm3(), ffi.NULL, self._pkey) != 1:
                raise SM2Error("libcrypto could not start an SM2 verification")
            return bool(lib.EVP_DigestVerify(md, signature, len(signature), message, len(message)) == 1)
        return bool(self._with_md(signer_id, run))

    def verify_digest(self, signature: bytes, e: bytes) -> bool:
        """e = SM3(Z || M), computed by the caller."""
        def run(lib: Any, ffi: Any, ctx: Any) -> bool:
            if lib.EVP_PKEY_verify_init(ctx) != 1:
                raise SM2Error("libcrypto could not start an SM2 verification")
            return bool(lib.EVP_PKEY_verify(ctx, signature, len(signature), e, len(e)) == 1)
        return bool(self._with_ctx(run))

    # ---- encryption --------------------------------------------------------

    def encrypt(self, plaintext: bytes) -> bytes:
        """The GM/T 0009 ASN.1 ciphertext."""
        def run(lib: Any, ffi: Any, ctx: Any) -> bytes:
            size = ffi.new("size_t *", 0)
            if (lib.EVP_PKEY_encrypt_init(ctx) != 1
                    or lib.EVP_PKEY_encrypt(ctx, ffi.NULL, size, plaintext, len(plaintext)) != 1):
                raise SM2Error("libcrypto could not start an SM2 encryption")
            out = ffi.new("unsigned char[]", size[0])
            if lib.EVP_PKEY_encrypt(ctx, out, size, plaintext, len(plaintext)) != 1:
                raise SM2Error("SM2 encryption failed")
            return bytes(ffi.buffer(out, size[0]))
        return bytes(self._with_ctx(run))


class SM2PublicKey(_Key):
    def __init__(self, point: bytes) -> None:
        super().__init__(point=point)


class SM2PrivateKey(_Key):
    def __init__(self, d: bytes) -> None:
        super().__init__(d=d)

    def public_key(self) -> SM2PublicKey:
        return SM2PublicKey(self.point)

    def sign(self, message: bytes, signer_id: bytes = DEFAULT_SIGNER_ID) -> bytes:
        """A DER SEQUENCE {r, s} over SM3(Z || message)."""
        def run(lib: Any, ffi: Any, md: Any) -> bytes:
            size = ffi.new("size_t *", MAX_SIGNATURE_BYTES)
            out = ffi.new(f"unsigned char[{MAX_SIGNATURE_BYTES}]")
            if (lib.EVP_DigestSignInit(md, ffi.NULL, lib.EVP_sm3(), ffi.NULL, self._pkey) != 1
                    or lib.EVP_DigestSign(md, out, size, message, len(message)) != 1):
                raise SM2Error("SM2 signing failed")
            return bytes(ffi.buffer(out, size[0]))
        return bytes(self._with_md(signer_id, run))

    def sign_digest(self, e: bytes) -> bytes:
        """A DER signature of a given e = SM3(Z || M)."""
        def run(lib: Any, ffi: Any, ctx: Any) -> bytes:
            size = ffi.new("size_t *", MAX_SIGNATURE_BYTES)
            out = ffi.new(f"unsigned char[{MAX_SIGNATURE_BYTES}]")
            if lib.EVP_PKEY_sign_init(ctx) != 1 or lib.EVP_PKEY_sign(ctx, out, size, e, len(e)) != 1:
                raise SM2Error("SM2 signing failed")
            return bytes(ffi.buffer(out, size[0]))
        return bytes(self._with_ctx(run))

    def decrypt(self, ciphertext: bytes) -> bytes:
        """A ciphertext in either layout (ASN.1 starts with 0x30, raw C1C3C2
        with the point's 0x04)."""
        if ciphertext[:1] == b"\x04":
            ciphertext = asn1_from_raw(ciphertext)

        def run(lib: Any, ffi: Any, ctx: Any) -> bytes:
            size = ffi.new("size_t *", 0)
            if (lib.EVP_PKEY_decrypt_init(ctx) != 1
                    or lib.EVP_PKEY_decrypt(ctx, ffi.NULL, size, ciphertext, len(ciphertext)) != 1):
                raise SM2Error("the SM2 ciphertext does not parse")
            out = ffi.new("unsigned char[]", max(size[0], 1))
            if lib.EVP_PKEY_decrypt(ctx, out, size, ciphertext, len(ciphertext)) != 1:
                raise SM2Error("the SM2 ciphertext does not decrypt with this key")
            try:
                return bytes(ffi.buffer(out, size[0]))
            finally:
                ffi.memmove(out, bytes(len(out)), len(out))
        return bytes(self._with_ctx(run))


# ---- ciphertext layouts ---------------------------------------------------------


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


def _der_uint(value: bytes) -> bytes:
    stripped = value.lstrip(b"\0") or b"\0"
    return _der(0x02, (b"\0" + stripped) if stripped[0] & 0x80 else stripped)


def asn1_from_raw(raw: bytes) -> bytes:
    """GM/T 0009 ASN.1 from C1 (04 || x || y) || C3 || C2."""
    if len(raw) < POINT_BYTES + HASH_BYTES + 1 or raw[0] != 4:
        raise SM2Error("a raw SM2 ciphertext is 04 || x || y || C3 (32 bytes) || C2 (at least 1 byte)")
    x, y = raw[1:33], raw[33:65]
    c3, c2 = raw[65:97], raw[97:]
    return _der(0x30, _der_uint(x) + _der_uint(y) + _der(0x04, c3) + _der(0x04, c2))


def _read(data: bytes, at: int, tag: int) -> Tuple[bytes, int]:
    """One DER element of the tag at data[at:]: (its body, where the next starts)."""
    if at + 2 > len(data) or data[at] != tag:
        raise SM2Error("the SM2 ciphertext is not the GM/T 0009 ASN.1 form")
    first, at = data[at + 1], at + 2
    if first < 0x80:
        size = first
    else:
        count = first & 0x7F
        if not 1 <= count <= 3 or at + count > len(data):
            raise SM2Error("the SM2 ciphertext is not the GM/T 0009 ASN.1 form")
        size, at = int.from_bytes(data[at:at + count], "big"), at + count
    if at + size > len(data):
        raise SM2Error("the SM2 ciphertext is cut short")
    return data[at:at + size], at + size


# SubjectPublicKeyInfo's algorithm: id-ecPublicKey on the SM2 curve (1.2.156.10197.1.301).
_SPKI_ALGORITHM = bytes.fromhex("301306072a8648ce3d020106082a811ccf5501822d")


def public_key_from_der(der: bytes) -> SM2PublicKey:
    """An SM2 public key from its DER SubjectPublicKeyInfo (SM2Error if it
    is not one)."""
    body, end = _read(der, 0, 0x30)
    if end != len(der) or not body.startswith(_SPKI_ALGORITHM):
        raise SM2Error("not an SM2 SubjectPublicKeyInfo")
    bits, end = _read(body, len(_SPKI_ALGORITHM), 0x03)
    if end != len(body) or bits[:1] != b"\x00":
        raise SM2Error("not an SM2 SubjectPublicKeyInfo")
    return SM2PublicKey(bits[1:])


def raw_from_asn1(asn1: bytes) -> bytes:
    """C1 || C3 || C2 from the GM/T 0009 ASN.1 form."""
    body, end = _read(asn1, 0, 0x30)
    if end != len(asn1):
        raise SM2Error("the SM2 ciphertext has bytes after its end")
    x, at = _read(body, 0, 0x02)
    y, at = _read(body, at, 0x02)
    c3, at = _read(body, at, 0x04)
    c2, at = _read(body, at, 0x04)
    if at != len(body) or len(c3) != HASH_BYTES or len(x.lstrip(b"\0")) > 32 or len(y.lstrip(b"\0")) > 32:
        raise SM2Error("the SM2 ciphertext is not the GM/T 0009 ASN.1 form")
    return b"\x04" + x.lstrip(b"\0").rjust(32, b"\0") + y.lstrip(b"\0").rjust(32, b"\0") + c3 + c2
