#!/usr/bin/env bash
# Interoperability of the gateway's signing with independent implementations, both directions,
# through the `jointlend` CLI: wechatpayv3 (RSA, wechatpay-v3), python-alipay-sdk (RSA2,
# sorted-params), gmssl and openssl (SM2-SM3, DER and raw r||s), cryptography and openssl
# (Ed25519), Python's hmac and cryptography (HMAC-SHA256).
#
# Self-contained: makes its own venv (JL_INTEROP_VENV to reuse one), installs the PyPI packages,
# builds the CLI if needed. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

venv="${JL_INTEROP_VENV:-$work/venv}"
if [[ ! -x "$venv/bin/python" ]]; then
    echo "== interop: creating venv $venv"
    python3 -m venv "$venv"
fi
echo "== interop: pip install cryptography wechatpayv3 python-alipay-sdk gmssl"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check cryptography wechatpayv3 python-alipay-sdk gmssl

echo "== interop: swift build --product jointlend"
if ! swift build --product jointlend > "$work/build.log" 2>&1; then cat "$work/build.log"; exit 1; fi
jointlend="$(swift build --show-bin-path)/jointlend"
[[ -x "$jointlend" ]] || { echo "no jointlend binary at $jointlend"; exit 1; }

command -v openssl >/dev/null || { echo "openssl CLI missing (apt-get install openssl)"; exit 1; }

"$venv/bin/python" scripts/interop/signing_interop.py --jointlend "$jointlend" --work "$work"
