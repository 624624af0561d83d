"""Writes the confirmation benchmark's configuration: one rule (pool-main 30% / bank-a 70%),
limits large enough for a million loans, rate limits out of the way. Paths are absolute."""
import json, sys
repo, out = sys.argv[1], sys.argv[2]
c = json.load(open(f"{repo}/Config/gateway.json"))
for f in c["funders"]:
    if f["kind"] == "pool":
        f["initialBalanceMinor"] = 10**15
    else:
        f["limits"] = {"dailyQuotaMinor": 10**15, "exposureLimitMinor": 10**15}
        f.pop("accepts", None)
c["ruleSet"] = {"version": 1, "rules": [], "defaultRule": {"id": "bench-joint", "funding": {"mode": "coFunding",
    "shares": [{"funderId": "pool-main", "bps": 3000}, {"funderId": "bank-a", "bps": 7000}]}}}
c["jurisdiction"] = "NONE"
c["contractsDir"] = f"{repo}/Contracts"
c["platform"] = {"secretFile": f"{repo}/Config/keys/platform-dev.secret"}
c["rateLimits"] = {"platform": {"ratePerSecond": 10000000, "burst": 10000000}, "partner": {"ratePerSecond": 10000000, "burst": 10000000}}
c["store"] = {"queueCommandsMax": 100000, "batchCommandsMax": 4096}
# Experiments: JL_BENCH_STORE='{"pipelinedSync": false}' overrides store settings.
import os
c["store"].update(json.loads(os.environ.get("JL_BENCH_STORE", "{}")))
c.setdefault("server", {}).update(json.loads(os.environ.get("JL_BENCH_SERVER", "{}")))
json.dump(c, open(out, "w"), indent=1)
