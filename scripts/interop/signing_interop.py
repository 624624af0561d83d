"""Both directions of signing interoperability, driven through the jointlend CLI.

Each check builds the signed message itself from the format's definition (SIGNING.md), never
from the gateway's "message" output, so a wrong canonical form fails here. Every direction also
has a negative control (a tampered input must be rejected) so a check cannot pass vacuously.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import uuid
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.exceptions import InvalidSignature

from wechatpayv3 import utils as wxutils
from alipay import AliPay
from gmssl import sm2 as gmsm2, func as gmfunc

FAILURES = []


def check(name, condition, detail=""):
    if condition:
        print(f"ok   {name}")
    else:
        print(f"FAIL {name} {detail}")
        FAILURES.append(name)


class Gateway:
    def __init__(self, binary, work):
        self.binary = binary
        self.work = work

    def run(self, *args):
        return subprocess.run([self.binary, *args], capture_output=True, text=True)

    def keys(self, algorithm):
        out = os.path.join(self.work, "gw-" + algorithm + "-" + uuid.uuid4().hex[:8])
        r = self.run("keys", "generate", "--algorithm", algorithm, "--out", out)
        if r.returncode != 0:
            raise RuntimeError(f"keys generate {algorithm} failed: {r.stderr}")
        if algorithm != "hmac":
            mode = os.stat(os.path.join(out, "private.pem")).st_mode & 0o777
            check(f"keys generate {algorithm}: private.pem is 0600", mode == 0o600, oct(mode))
        return out

    def body_file(self, body: bytes):
        path = os.path.join(self.work, "body-" + uuid.uuid4().hex)
        with open(path, "wb") as f:
            f.write(body)
        return path

    def sign(self, fmt, algorithm, key, body: bytes, **options):
        args = ["sign", "--format", fmt, "--algorithm", algorithm, "--key", key, "--body-file", self.body_file(body)]
        for name, value in options.items():
            args += ["--" + name.replace("_", "-"), str(value)]
        r = self.run(*args)
        if r.returncode != 0:
            raise RuntimeError(f"sign failed: {r.stderr}")
        return json.loads(r.stdout)

    def verify(self, fmt, algorithm, key, body: bytes, **options):
        args = ["verify", "--format", fmt, "--algorithm", algorithm, "--key", key, "--body-file", self.body_file(body)]
        for name, value in options.items():
            args += ["--" + name.replace("_", "-"), str(value)]
        r = self.run(*args)
        return r.returncode, (r.stdout + r.stderr).strip()


def request_message(method, path, ts, nonce, body: bytes) -> bytes:
    return f"{method}\n{path}\n{ts}\n{nonce}\n".encode() + body + b"\n"


def response_message(ts, nonce, body: bytes) -> bytes:
    return f"{ts}\n{nonce}\n".encode() + body + b"\n"


def write(work, name, data: bytes):
    path = os.path.join(work, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def nonce():
    return uuid.uuid4().hex.upper()


# ---------------------------------------------------------------- RSA, wechatpay-v3

def rsa_wechatpay(gw: Gateway, work):
    keydir = gw.keys("rsa")
    private_pem = open(os.path.join(keydir, "private.pem")).read()
    public = wxutils.load_public_key(open(os.path.join(keydir, "public.pem")).read())
    private = wxutils.load_private_key(private_pem)
    mchid, serial = "1900000109", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
    body = json.dumps({"loan_id": "L-1001", "amount": 1250000}).encode()
    ts, n = int(time.time()), nonce()

    # gateway -> wechatpayv3: the request signature is what the SDK computes (deterministic PKCS#1 v1.5).
    out = gw.sign("wechatpay-v3", "rsa", os.path.join(keydir, "private.pem"), body, key_id=serial, method="POST",
                  path="/v3/pay/transactions/jsapi", timestamp=ts, nonce=n, mchid=mchid)
    message = request_message("POST", "/v3/pay/transactions/jsapi", ts, n, body)
    check("wechatpay-v3 RSA request: gateway signature == wechatpayv3.rsa_sign",
          out["signature"] == wxutils.rsa_sign(private, message.decode()))
    expected_auth = ('WECHATPAY2-SHA256-RSA2048 mchid="%s",nonce_str="%s",signature="%s",timestamp="%s",serial_no="%s"'
                     % (mchid, n, out["signature"], ts, serial))
    check("wechatpay-v3 RSA request: Authorization header matches the SDK's layout", out["authorization"] == expected_auth)
    msg_path = write(work, "wx-msg", message)
    dgst = subprocess.run(["openssl", "dgst", "-sha256", "-sign", os.path.join(keydir, "private.pem"), msg_path], capture_output=True)
    check("wechatpay-v3 RSA request: gateway signature == openssl dgst -sha256 -sign",
          base64.b64encode(dgst.stdout).decode() == out["signature"])

    # gateway response -> wechatpayv3.rsa_verify (the SDK's callback/response check).
    resp = gw.sign("wechatpay-v3", "rsa", os.path.join(keydir, "private.pem"), body, key_id=serial, kind="response", timestamp=ts, nonce=n)
    check("wechatpay-v3 RSA response: wechatpayv3.rsa_verify accepts the gateway's",
          wxutils.rsa_verify(ts, n, body.decode(), resp["headers"]["Wechatpay-Signature"], public))
    check("wechatpay-v3 RSA response: wechatpayv3.rsa_verify rejects a tampered body",
          not wxutils.rsa_verify(ts, n, body.decode() + " ", resp["headers"]["Wechatpay-Signature"], public))

    # wechatpayv3 -> gateway: the SDK's own build_authorization with a key made by `cryptography`.
    partner = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    partner_pub = write(work, "wx-partner-pub.pem", partner.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    body_text = json.dumps({"loan_id": "L-1001", "status": "FUNDED"})
    auth = wxutils.build_authorization("/v1/partner/callbacks", "POST", mchid, serial, partner, data=body_text, nonce_str=nonce())
    rc, why = gw.verify("wechatpay-v3", "rsa", partner_pub, body_text.encode(), method="POST", path="/v1/partner/callbacks",
                        authorization=auth, key_id=serial, mchid=mchid)
    check("wechatpay-v3 RSA request: gateway verifies wechatpayv3.build_authorization", rc == 0, why)
    rc, why = gw.verify("wechatpay-v3", "rsa", partner_pub, body_text.encode(), method="POST", path="/v1/partner/callbackz",
                        authorization=auth, key_id=serial, mchid=mchid)
    check("wechatpay-v3 RSA request: gateway rejects it on another path", rc == 1 and "signature_invalid" in why, why)

    # wechatpayv3-style callback (Wechatpay-* headers) -> gateway.
    ts2, n2 = int(time.time()), nonce()
    sig = wxutils.rsa_sign(partner, response_message(ts2, n2, body_text.encode()).decode())
    rc, why = gw.verify("wechatpay-v3", "rsa", partner_pub, body_text.encode(), kind="callback", signature=sig,
                        timestamp=ts2, nonce=n2, key_id=serial)
    check("wechatpay-v3 RSA callback: gateway verifies wechatpayv3.rsa_sign", rc == 0, why)
    rc, why = gw.verify("wechatpay-v3", "rsa", partner_pub, body_text.encode(), kind="callback", signature=sig,
                        timestamp=ts2 + 1, nonce=n2, key_id=serial)
    check("wechatpay-v3 RSA callback: gateway rejects a shifted timestamp", rc == 1, why)


# ---------------------------------------------------------------- RSA2, sorted-params (Alipay)

def rsa_sorted_params(gw: Gateway, work):
    keydir = gw.keys("rsa")
    private_pem = open(os.path.join(keydir, "private.pem")).read()
    public_pem = open(os.path.join(keydir, "public.pem")).read()
    gateway_alipay = AliPay(appid="2021000000000000", app_private_key_string=private_pem, alipay_public_key_string=public_pem)
    ts, n = int(time.time()), nonce()
    form = "out_trade_no=L-1001&total_amount=12500.00&subject=%E5%80%9F%E6%AC%BE&biz_content=%7B%22a%22%3A1%7D".encode()

    # gateway callback -> python-alipay-sdk verify (which drops sign_type, as for callbacks).
    out = gw.sign("sorted-params", "rsa", os.path.join(keydir, "private.pem"), form, kind="callback", key_id="k2025",
                  timestamp=ts, nonce=n)
    data = dict(parse_qsl(form.decode()))
    data.update({k: v for k, v in out["parameters"].items() if k != "sign"})
    check("sorted-params RSA2 callback: python-alipay-sdk verify accepts the gateway's",
          gateway_alipay.verify(dict(data), out["parameters"]["sign"]))
    tampered = dict(data, total_amount="12500.01")
    check("sorted-params RSA2 callback: python-alipay-sdk rejects a tampered amount",
          not gateway_alipay.verify(tampered, out["parameters"]["sign"]))

    # gateway request: sign_type is signed; python-alipay-sdk's sign_data gives the same signature.
    out = gw.sign("sorted-params", "rsa", os.path.join(keydir, "private.pem"), form, kind="request", key_id="k2025",
                  timestamp=ts, nonce=n)
    data = dict(parse_qsl(form.decode()))
    data.update({k: v for k, v in out["parameters"].items() if k != "sign"})
    signed = dict(parse_qsl(gateway_alipay.sign_data(dict(data))))
    check("sorted-params RSA2 request: gateway sign == python-alipay-sdk sign_data", signed["sign"] == out["parameters"]["sign"])

    # python-alipay-sdk -> gateway, with the partner's own key (made by `cryptography`).
    partner = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    partner_private = partner.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()).decode()
    partner_public = partner.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    partner_pub = write(work, "alipay-partner-pub.pem", partner_public.encode())
    partner_alipay = AliPay(appid="2021000000000001", app_private_key_string=partner_private, alipay_public_key_string=partner_public)
    request = {"app_id": "2021000000000001", "method": "jointlend.loan.fund", "charset": "utf-8", "sign_type": "RSA2",
               "timestamp": str(int(time.time())), "nonce": nonce(), "key_id": "ali-1", "version": "1.0",
               "biz_content": {"loan_id": "L-1001", "amount": 1250000}, "subject": "借款"}
    body = partner_alipay.sign_data(dict(request)).encode()
    rc, why = gw.verify("sorted-params", "rsa", partner_pub, body, kind="request", key_id="ali-1")
    check("sorted-params RSA2 request: gateway verifies python-alipay-sdk sign_data (form body)", rc == 0, why)
    rc, why = gw.verify("sorted-params", "rsa", partner_pub, body.replace(b"jointlend.loan.fund", b"jointlend.loan.fonD"),
                        kind="request", key_id="ali-1")
    check("sorted-params RSA2 request: gateway rejects a tampered method parameter", rc == 1, why)

    # The same parameters as a JSON body: nested values travel as the compact text that was signed.
    signed = dict(parse_qsl(body.decode()))
    json_body = dict(signed)
    json_body["biz_content"] = json.loads(signed["biz_content"])
    raw = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode()
    rc, why = gw.verify("sorted-params", "rsa", partner_pub, raw, kind="request", key_id="ali-1")
    check("sorted-params RSA2 request: gateway verifies python-alipay-sdk signature (JSON body)", rc == 0, why)


# ---------------------------------------------------------------- SM2-SM3 (gmssl, openssl)

SM2_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")


def sm2_hex_keys(private_pem_path):
    text = subprocess.run(["openssl", "pkey", "-in", private_pem_path, "-noout", "-text"], capture_output=True, text=True).stdout
    priv = re.search(r"priv:\s*((?:[0-9a-f]{2}:?\s*)+)", text).group(1)
    pub = re.search(r"pub:\s*((?:[0-9a-f]{2}:?\s*)+)", text).group(1)
    clean = lambda s: re.sub(r"[^0-9a-f]", "", s)
    priv_hex = clean(priv)[-64:].rjust(64, "0")
    pub_hex = clean(pub)
    assert pub_hex.startswith("04") and len(pub_hex) == 130
    return priv_hex, pub_hex[2:]


def gmssl_signer(private_hex, public_hex):
    signer = gmsm2.CryptSM2(private_key=private_hex, public_key="00")
    # gmssl's constructor strips a leading "04" with lstrip, which also eats leading 0/4 digits
    # of x; assign the public key directly.
    signer.public_key = public_hex
    return signer


def sm2(gw: Gateway, work):
    keydir = gw.keys("sm2")
    gw_priv = os.path.join(keydir, "private.pem")
    gw_pub = os.path.join(keydir, "public.pem")
    _, gw_pub_hex = sm2_hex_keys(gw_priv)
    body = json.dumps({"loan_id": "L-2002", "amount": 880000}).encode()

    for encoding in ("raw", "der"):
        ts, n = int(time.time()), nonce()
        out = gw.sign("jl1", "sm2", gw_priv, body, key_id="sm2-k1", method="POST", path="/v1/fund", timestamp=ts, nonce=n,
                      sm2_encoding=encoding)
        message = request_message("POST", "/v1/fund", ts, n, body)
        sig = base64.b64decode(out["signature"])
        verifier = gmssl_signer("", gw_pub_hex)
        verifier.asn1 = encoding == "der"
        check(f"SM2-SM3 {encoding}: gmssl verifies the gateway's", bool(verifier.verify_with_sm3(sig.hex(), message)))
        check(f"SM2-SM3 {encoding}: gmssl rejects it for another message", not verifier.verify_with_sm3(sig.hex(), message + b"x"))
        if encoding == "der":
            msg_path, sig_path = write(work, "sm2-msg", message), write(work, "sm2-sig", sig)
            r = subprocess.run(["openssl", "pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pubin", "-inkey", gw_pub,
                                "-pkeyopt", "distid:1234567812345678", "-in", msg_path, "-sigfile", sig_path], capture_output=True, text=True)
            check("SM2-SM3 der: openssl pkeyutl (distid 1234567812345678) verifies the gateway's", r.returncode == 0, r.stdout + r.stderr)

    # gmssl -> gateway, raw r||s and DER, with gmssl's own key.
    private_hex = gmfunc.random_hex(64)
    public_hex = gmsm2.CryptSM2(private_key=private_hex, public_key="00")._kg(int(private_hex, 16), gmsm2.default_ecc_table["g"])
    pem = b"-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(SM2_SPKI_PREFIX + b"\x04" + bytes.fromhex(public_hex)) + b"-----END PUBLIC KEY-----\n"
    partner_pub = write(work, "gmssl-pub.pem", pem)
    for encoding in ("raw", "der"):
        ts, n = int(time.time()), nonce()
        message = request_message("POST", "/v1/partner/callbacks", ts, n, body)
        signer = gmssl_signer(private_hex, public_hex)
        signer.asn1 = encoding == "der"
        sig = bytes.fromhex(signer.sign_with_sm3(message, gmfunc.random_hex(64)))
        common = dict(key_id="gm-1", method="POST", path="/v1/partner/callbacks", timestamp=ts, nonce=n, sm2_encoding=encoding)
        rc, why = gw.verify("jl1", "sm2", partner_pub, body, signature=base64.b64encode(sig).decode(), **common)
        check(f"SM2-SM3 {encoding}: gateway verifies gmssl's", rc == 0, why)
        rc, why = gw.verify("jl1", "sm2", partner_pub, body, signature=base64.b64encode(sig).decode(), sm2_id="ALICE123@YAHOO.COM",
                            **common)
        check(f"SM2-SM3 {encoding}: gateway rejects gmssl's under another distinguishing ID", rc == 1, why)

    # openssl -> gateway (DER), with an openssl-made key.
    op_priv = os.path.join(work, "openssl-sm2.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "SM2", "-out", op_priv], check=True, capture_output=True)
    op_pub = os.path.join(work, "openssl-sm2-pub.pem")
    subprocess.run(["openssl", "pkey", "-in", op_priv, "-pubout", "-out", op_pub], check=True, capture_output=True)
    ts, n = int(time.time()), nonce()
    msg_path = write(work, "sm2-op-msg", request_message("POST", "/v1/partner/callbacks", ts, n, body))
    sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-inkey", op_priv,
                          "-pkeyopt", "distid:1234567812345678", "-in", msg_path], check=True, capture_output=True).stdout
    rc, why = gw.verify("jl1", "sm2", op_pub, body, signature=base64.b64encode(sig).decode(), key_id="op-1", method="POST",
                        path="/v1/partner/callbacks", timestamp=ts, nonce=n)
    check("SM2-SM3 der: gateway verifies openssl pkeyutl's", rc == 0, why)


# ---------------------------------------------------------------- Ed25519 (cryptography, openssl)

def ed25519_checks(gw: Gateway, work):
    keydir = gw.keys("ed25519")
    gw_priv = os.path.join(keydir, "private.pem")
    body = json.dumps({"loan_id": "L-3003"}).encode()
    ts, n = int(time.time()), nonce()
    out = gw.sign("jl1", "ed25519", gw_priv, body, key_id="ed-1", method="POST", path="/v1/fund?x=1", timestamp=ts, nonce=n)
    message = request_message("POST", "/v1/fund?x=1", ts, n, body)
    public = serialization.load_pem_public_key(open(os.path.join(keydir, "public.pem"), "rb").read())
    sig = base64.b64decode(out["signature"])
    try:
        public.verify(sig, message)
        ok = True
    except InvalidSignature:
        ok = False
    check("Ed25519: cryptography verifies the gateway's", ok)
    private = serialization.load_pem_private_key(open(gw_priv, "rb").read(), password=None)
    check("Ed25519: gateway signature == cryptography's (deterministic)", private.sign(message) == sig)
    msg_path, sig_path = write(work, "ed-msg", message), write(work, "ed-sig", sig)
    r = subprocess.run(["openssl", "pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", os.path.join(keydir, "public.pem"),
                        "-in", msg_path, "-sigfile", sig_path], capture_output=True, text=True)
    check("Ed25519: openssl pkeyutl verifies the gateway's", r.returncode == 0, r.stdout + r.stderr)

    partner = ed25519.Ed25519PrivateKey.generate()
    partner_pub = write(work, "ed-partner.pem", partner.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    ts, n = int(time.time()), nonce()
    for kind in ("request", "response"):
        if kind == "request":
            message = request_message("POST", "/v1/partner/callbacks", ts, n, body)
            extra = dict(method="POST", path="/v1/partner/callbacks")
        else:
            message = response_message(ts, n, body)
            extra = dict(kind="response")
        sig = base64.b64encode(partner.sign(message)).decode()
        rc, why = gw.verify("jl1", "ed25519", partner_pub, body, signature=sig, key_id="edp-1", timestamp=ts, nonce=n, **extra)
        check(f"Ed25519 {kind}: gateway verifies cryptography's", rc == 0, why)
        rc, why = gw.verify("jl1", "ed25519", partner_pub, body + b" ", signature=sig, key_id="edp-1", timestamp=ts, nonce=n, **extra)
        check(f"Ed25519 {kind}: gateway rejects it for another body", rc == 1, why)


# ---------------------------------------------------------------- HMAC-SHA256 (hmac, cryptography)

def hmac_checks(gw: Gateway, work):
    keydir = gw.keys("hmac")
    secret_path = os.path.join(keydir, "secret")
    secret = open(secret_path, "rb").read()
    mode = os.stat(secret_path).st_mode & 0o777
    check("keys generate hmac: secret is 0600", mode == 0o600, oct(mode))
    body = b'{"loan_id":"L-4004","amount":100}'
    ts, n = int(time.time()), nonce()
    out = gw.sign("jl1", "hmac", secret_path, body, key_id="platform", method="POST", path="/v1/loans", timestamp=ts, nonce=n)
    message = request_message("POST", "/v1/loans", ts, n, body)
    check("HMAC-SHA256: gateway MAC == Python hmac", base64.b64decode(out["signature"]) == hmac.new(secret, message, hashlib.sha256).digest())
    h = crypto_hmac.HMAC(secret, hashes.SHA256())
    h.update(message)
    check("HMAC-SHA256: gateway MAC == cryptography HMAC", base64.b64decode(out["signature"]) == h.finalize())

    partner_secret = os.urandom(32)
    # The CLI drops one trailing newline from an HMAC secret file (as `echo` writes one), so a raw
    # secret is written with a newline after it: random bytes that end in 0x0A stay whole.
    partner_path = write(work, "partner-secret", partner_secret + b"\n")
    for kind in ("request", "response"):
        ts, n = int(time.time()), nonce()
        if kind == "request":
            message = request_message("PUT", "/v1/loans/L-4004?force=1", ts, n, body)
            extra = dict(method="PUT", path="/v1/loans/L-4004?force=1")
        else:
            message = response_message(ts, n, body)
            extra = dict(kind="response")
        mac = base64.b64encode(hmac.new(partner_secret, message, hashlib.sha256).digest()).decode()
        rc, why = gw.verify("jl1", "hmac", partner_path, body, signature=mac, key_id="p-1", timestamp=ts, nonce=n, **extra)
        check(f"HMAC-SHA256 {kind}: gateway verifies Python hmac", rc == 0, why)
        rc, why = gw.verify("jl1", "hmac", partner_path, body, signature=mac, key_id="p-1", timestamp=ts, nonce=n + "X", **extra)
        check(f"HMAC-SHA256 {kind}: gateway rejects another nonce", rc == 1, why)
    # The sorted-params format with HMAC: Python builds the sorted string itself.
    ts, n = int(time.time()), nonce()
    params = {"loan_id": "L-4004", "amount": "100", "key_id": "p-1", "timestamp": str(ts), "nonce": n, "sign_type": "HMAC-SHA256"}
    text = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign_type")
    params["sign"] = base64.b64encode(hmac.new(partner_secret, text.encode(), hashlib.sha256).digest()).decode()
    form = "&".join(f"{k}={v.replace('+', '%2B').replace('/', '%2F').replace('=', '%3D')}" for k, v in params.items()).encode()
    rc, why = gw.verify("sorted-params", "hmac", partner_path, form, kind="callback", key_id="p-1")
    check("HMAC-SHA256 sorted-params callback: gateway verifies Python hmac", rc == 0, why)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jointlend", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    gw = Gateway(args.jointlend, args.work)
    for section in (rsa_wechatpay, rsa_sorted_params, sm2, ed25519_checks, hmac_checks):
        print(f"-- {section.__name__}")
        try:
            section(gw, args.work)
        except Exception as error:  # a crash in a section is a failure, not a skip
            check(f"{section.__name__} ran to the end", False, repr(error))
    if FAILURES:
        print(f"interop: {len(FAILURES)} check(s) failed: {', '.join(FAILURES)}")
        return 1
    print("interop: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
