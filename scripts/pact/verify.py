"""Provider verification of the gateway with the official Pact verifier (pact-python, offline).

Replays every partner-as-consumer pact (Contracts/*/pacts/*-jointlend-gateway.json) against a
running gateway started with --test-mode; the provider-state endpoint injects fresh tranche ids,
timestamps, nonces and signatures. Exit status 0 only if every interaction verified.
"""
import glob
import sys

from pact import Verifier


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: verify.py GATEWAY_URL CONTRACTS_DIR", file=sys.stderr)
        return 2
    url, contracts = sys.argv[1], sys.argv[2]
    pacts = sorted(glob.glob(f"{contracts}/*/pacts/*-jointlend-gateway.json"))
    if not pacts:
        print(f"no partner pacts under {contracts}", file=sys.stderr)
        return 1
    failed = 0
    for path in pacts:
        verifier = (
            Verifier("jointlend-gateway", host="127.0.0.1")
            .add_transport(url=url)
            .add_source(path)
            .state_handler(f"{url}/_test/pact/provider-states", body=True)
            .set_error_on_empty_pact()
        )
        try:
            verifier.verify()
            print(f"pact verified: {path}")
        except Exception as error:  # the verifier raises on any failed interaction
            failed += 1
            print(f"pact FAILED: {path}: {error}", file=sys.stderr)
    print(f"pact verification: {len(pacts) - failed} of {len(pacts)} pact files verified")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
