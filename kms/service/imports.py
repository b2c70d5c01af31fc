"""Bring your own key: import of external key material into EXTERNAL keys.

GetParametersForImport issues a fresh wrapping key pair (RSA-2048, or SM2
for SM2PKE, as SM regions wrap) and an import token, valid 24 hours; the private key is stored wrapped under the
root key, bound to the token. ImportKeyMaterial unwraps the caller's
material with it (the token is then spent), fixes the key's material on the
first import, and refuses different material later (a salted fingerprint is
kept so a re-import after deletion or expiry can be checked). Material
expires at ValidTo: the key falls back to PendingImport and the material
leaves the store, until the same material is imported again.

Records: import / <token> -> {"key_id", "algorithm", "wrapped", "valid_to"}.
"""
import hashlib
import hmac
import secrets
from typing import Any, Callable, Dict, List, Optional

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kms import errors
from kms.keys import sm2
from kms.keys.asymmetric import RSA_PADDINGS
from kms.service.keys import (DAY, ENABLED, ORIGIN_EXTERNAL, PENDING_IMPORT, SYMMETRIC_CIPHERS, KeyService,
                              check_key_id, check_state)
from kms.service.keytypes import MANAGED_BY_TRANSIT
from kms.store import Op

# The Tencent API's RSA encryption names (its WrappingAlgorithm values, and
# the algorithms of its asymmetric actions) -> kms.keys.asymmetric.RSA_PADDINGS.
RSAES_NAMES = {"RSAES_PKCS1_V1_5": "rsa-pkcs1", "RSAES_OAEP_SHA_1": "rsa-oaep-sha1",
               "RSAES_OAEP_SHA_256": "rsa-oaep-sha256"}
WRAPPING_ALGORITHMS: Dict[str, Optional[Callable[[], Any]]] = {
    **{name: RSA_PADDINGS[padding_name] for name, padding_name in RSAES_NAMES.items()},
    "SM2PKE": None,  # SM2 public-key encryption (kms.keys.sm2), GM/T 0009 ASN.1 or raw C1C3C2
}
# The wrapping key spec each algorithm needs.
WRAPPING_KEY_SPECS = {name: "SM2" if name == "SM2PKE" else "RSA_2048" for name in WRAPPING_ALGORITHMS}
MATERIAL_BYTES = 32
MAX_VALID_TO = 2147443200


def _fingerprint(key_id: str, salt: bytes, material: bytes) -> bytes:
    return hmac.new(salt, key_id.encode() + b"\x00" + material, hashlib.sha256).digest()


class ImportService:
    def __init__(self, keys: KeyService) -> None:
        self.keys = keys
        self.store = keys.store

    def _external(self, key_id: str) -> Dict[str, Any]:
        record = self.keys.describe(check_key_id(key_id))
        if record["origin"] != ORIGIN_EXTERNAL or record.get("managed_by") == MANAGED_BY_TRANSIT:
            # A key imported through transit takes new material by transit's import_version.
            raise errors.NotExternalKey(f"key {key_id} was not created for imported material (Type 2)")
        return record

    def parameters(self, key_id: str, algorithm: str, key_spec: str) -> Dict[str, Any]:
        if algorithm not in WRAPPING_ALGORITHMS:
            raise errors.InvalidParameter("WrappingAlgorithm must be one of " + ", ".join(WRAPPING_ALGORITHMS))
        if key_spec != WRAPPING_KEY_SPECS[algorithm]:
            raise errors.InvalidParameter(f"WrappingKeySpec must be {WRAPPING_KEY_SPECS[algorithm]} "
                                          f"for {algorithm}")
        check_state(self._external(key_id), "import")
        if algorithm == "SM2PKE":
            der = sm2.generate()  # the private scalar, as SM2 key material is stored
            public = sm2.SM2PrivateKey(der).public_der()
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            der = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
            public = private.public_key().public_bytes(serialization.Encoding.DER,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
        token = secrets.token_urlsafe(32)
        valid_to = self.keys.clock.now_s() + DAY
        entry = {"key_id": key_id, "algorithm": algorithm, "valid_to": valid_to,
                 "wrapped": self.keys.wrapper.wrap("import", token, 1, der)}
        self.store.commit(lambda: [Op("put", "import", token, entry)])
        return {"token": token, "public_key_der": public, "valid_to": valid_to}

    def import_material(self, key_id: str, token: str, encrypted: bytes,
                        valid_to: Optional[int]) -> None:
        kind = self._external(key_id).get("material_kind", "aes")  # aes or sm4: its material's size
        entry = self.store.get("import", token)
        if entry is None or entry["key_id"] != key_id:
            raise errors.InvalidParameter("ImportToken was not issued for this key (or was used already)")
        if entry["valid_to"] < self.keys.clock.now_s():
            raise errors.ImportTokenExpired("ImportToken has expired; call GetParametersForImport again")
        valid_to = valid_to or 0
        if valid_to and not self.keys.clock.now_s() < valid_to <= MAX_VALID_TO:
            raise errors.InvalidParameter(f"ValidTo must be 0 or a time after now and at most {MAX_VALID_TO}")
        der = self.keys.wrapper.unwrap("import", token, 1, entry["wrapped"])
        try:
            if entry["algorithm"] == "SM2PKE":
                material = sm2.SM2PrivateKey(der).decrypt(encrypted)
            else:
                private = serialization.load_der_private_key(der, password=None)
                material = private.decrypt(encrypted, WRAPPING_ALGORITHMS[entry["algorithm"]]())  # type: ignore[union-attr,misc]
        except (ValueError, sm2.SM2Error):
            raise errors.MaterialUnwrapFailed(
                "EncryptedKeyMaterial does not decrypt with the issued public key and algorithm") from None
        size = SYMMETRIC_CIPHERS.get(kind, MATERIAL_BYTES)
        if len(material) != size:
            raise errors.MaterialUnwrapFailed(f"key material of an {kind.upper()} key must be {size} bytes, "
                                              f"got {len(material)}")

        def mutate(record: Dict[str, Any]) -> List[Op]:
            if self.store.get("import", token) is None:
                raise errors.InvalidParameter("ImportToken was used already")
            ops = [Op("del", "import", token)]
            if "import_salt" in record:
                if not hmac.compare_digest(_fingerprint(key_id, record["import_salt"], material),
                                           record["import_fingerprint"]):
                    raise errors.MaterialMismatch("this key was first imported with different material")
            else:
                record["import_salt"] = secrets.token_bytes(16)
                record["import_fingerprint"] = _fingerprint(key_id, record["import_salt"], material)
            if self.store.get("ver", f"{key_id}/1") is None:
                ops += self.keys.version_ops(key_id, 1, material)
            record.update(state=ENABLED, latest=1, valid_to=valid_to)
            return ops

        self.keys.change(key_id, "import", mutate)

    def delete_material(self, key_id: str) -> None:
        self._external(key_id)
        # compact: the wrapped material leaves the disk too
        self.keys.change(key_id, "delete_material", self._drop_material, compact=True)

    def _drop_material(self, record: Dict[str, Any]) -> List[Op]:
        record.update(state=PENDING_IMPORT, valid_to=0)
        return [Op("del", "ver", f"{record['id']}/1")]

    def expire_due(self) -> List[str]:
        """Imported material whose ValidTo has passed goes away."""
        now = self.keys.clock.now_s()
        expired = []
        for record in list(self.store.items("key").values()):
            if (record["origin"] == ORIGIN_EXTERNAL and record["state"] == ENABLED
                    and 0 < record["valid_to"] <= now):
                # One step each: the material is gone from disk, or still
                # in force and expired again on the next pass.
                self.keys.change(record["id"], "delete_material", self._drop_material, compact=True)
                expired.append(record["id"])
        return expired
