"""Bring your own key into transit, as OpenBao does it: a per-server RSA-4096
wrapping key (GET wrapping_key), and material sent as RSA-OAEP of an
ephemeral AES-256 key followed by that key's AES-KWP wrap (RFC 5649) of the
material. The material is checked to be a usable key of the type (its size;
a private key that loads, on the right curve or modulus) before anything is
stored. Imported keys are EXTERNAL: they rotate only by import_version.

Material by type: the raw key for symmetric types and hmac, PKCS #8 DER for
RSA and ECDSA, the 32-byte seed or PKCS #8 DER for ed25519.
Record: meta / transit-wrapping-key -> {"wrapped": the private key, PKCS #8
DER, under the root key}.
"""
from typing import Any, Callable, Dict, List, Optional

from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from kms import errors
from kms.service.keys import ORIGIN_EXTERNAL, KeyService
from kms.service.keytypes import KEY_TYPES, MANAGED_BY_TRANSIT
from kms.service.transit import TransitError, TransitService, check_name, material_fits
from kms.store import Op

WRAPPING_BITS = 4096
WRAPPING_RECORD = ("meta", "transit-wrapping-key")
OAEP_HASHES: Dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "SHA1": hashes.SHA1, "SHA224": hashes.SHA224, "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384, "SHA512": hashes.SHA512}
MAX_IMPORT_CIPHERTEXT = 16384  # an RSA-4096 PKCS #8 key wrapped is about 2,900 bytes


class TransitImports:
    def __init__(self, transit: TransitService) -> None:
        self.transit = transit
        self.keys: KeyService = transit.keys
        self.store = transit.store
        self._private: Optional[rsa.RSAPrivateKey] = None

    # ---- the wrapping key -------------------------------------------------------

    def _wrapping_key(self) -> rsa.RSAPrivateKey:
        if self._private is not None:
            return self._private
        kind, name = WRAPPING_RECORD
        entry = self.store.get(kind, name)
        if entry is None:
            made = rsa.generate_private_key(public_exponent=65537, key_size=WRAPPING_BITS)
            der = made.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
            wrapped = self.keys.wrapper.wrap("transit-wrapping", name, 1, der)

            def build() -> List[Op]:  # another worker may have made one first: keep that one
                return [] if self.store.get(kind, name) is not None else [Op("put", kind, name, {"wrapped": wrapped})]
            self.store.commit(build)
            entry = self.store.get(kind, name)
        der = self.keys.wrapper.unwrap("transit-wrapping", name, 1, entry["wrapped"])
        private = serialization.load_der_private_key(der, password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise errors.InternalError("the stored transit wrapping key is not an RSA key")
        self._private = private
        return private

    def wrapping_public_key(self) -> str:
        return str(self._wrapping_key().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())

    def _unwrap(self, ciphertext: bytes, hash_function: Optional[str]) -> bytes:
        name = hash_function or "SHA256"
        if name not in OAEP_HASHES:
            raise TransitError(f"unknown hash function: {name[:32]}")
        head = WRAPPING_BITS // 8
        if len(ciphertext) <= head + 16:
            raise TransitError("provided ciphertext is too short")
        if len(ciphertext) > MAX_IMPORT_CIPHERTEXT:
            raise TransitError("provided ciphertext is too long")
        algorithm = OAEP_HASHES[name]()
        try:
            ephemeral = self._wrapping_key().decrypt(ciphertext[:head], padding.OAEP(padding.MGF1(algorithm),
                                                                                     algorithm, None))
        except ValueError:
            raise TransitError("failed to decrypt the ephemeral key with the wrapping key (RSA-OAEP, "
                               f"{name})") from None
        if len(ephemeral) not in (16, 24, 32):
            raise TransitError("the ephemeral key must be an AES key of 16, 24 or 32 bytes")
        try:
            return keywrap.aes_key_unwrap_with_padding(ephemeral, ciphertext[head:])
        except keywrap.InvalidUnwrap:
            raise TransitError("kwp: unwrap failed integrity check") from None

    # ---- import ----------------------------------------------------------------------

    def _material(self, key_type: str, ciphertext: bytes, hash_function: Optional[str]) -> bytes:
        meta = KEY_TYPES[key_type]
        material = self._unwrap(ciphertext, hash_function)
        if meta.kind == "ed25519" and len(material) != 32:
            material = _ed25519_seed(material)
        if not material_fits(meta, material):
            raise TransitError(f"error importing key: the material is not a usable {key_type} key")
        return material

    def import_key(self, name: str, ciphertext: bytes, hash_function: Optional[str], settings: Dict[str, Any],
                   creator: str) -> Dict[str, Any]:
        """A new key whose version 1 is the caller's material."""
        check_name(name)
        if self.transit.record(name) is not None or self.store.get("alias", name) is not None:
            raise TransitError("the import path cannot be used with an existing key; use import-version "
                               "to rotate an existing imported key")
        if settings.pop("allow_rotation", False):
            raise TransitError("allow_rotation is not supported: an imported key gets new versions "
                               "by import_version only")
        key_type = settings.get("type", "aes256-gcm96")
        new = self.transit.new_settings(key_type, settings.get("derived", False),
                                        settings.get("convergent_encryption", False),
                                        settings.get("exportable", False),
                                        settings.get("allow_plaintext_backup", False),
                                        settings.get("auto_rotate_period", 0))
        if new["auto_rotate_period"]:
            raise TransitError("auto_rotate_period cannot be set on an imported key")
        material = self._material(key_type, ciphertext, hash_function)
        meta = KEY_TYPES[key_type]
        size = len(material) if meta.kind == "hmac" else meta.size
        try:
            return self.keys.create_with_versions(
                name, "imported transit key", meta.usage, creator, size,
                {"transit": new, "material_kind": meta.kind, "managed_by": MANAGED_BY_TRANSIT,
                 "origin": ORIGIN_EXTERNAL},
                {1: (material, self.keys.clock.now_s())})
        except errors.AliasExists:
            raise TransitError("the import path cannot be used with an existing key") from None

    def import_version(self, name: str, ciphertext: bytes, hash_function: Optional[str]) -> Dict[str, Any]:
        record = self.transit.record(name)
        if record is None:
            raise TransitError("no import key exists at this name; use the import path to create one")
        if record.get("origin") != ORIGIN_EXTERNAL or not self.transit.transit_lifecycle(record):
            raise TransitError("import_version is only for keys imported through transit")
        key_type = self.transit.describe(record)["type"]
        material = self._material(key_type, ciphertext, hash_function)
        return self.keys.add_version(record["id"], material)


def _ed25519_seed(der: bytes) -> bytes:
    """The 32-byte seed of a PKCS #8 ed25519 key (b"" if it is not one)."""
    try:
        private = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError):
        return b""
    if not isinstance(private, ed25519.Ed25519PrivateKey):
        return b""
    return private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
