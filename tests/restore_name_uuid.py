#!/usr/bin/env python3
"""restore_name_uuid.py INPUT.xml ORACLE_OUT.xml DST.xml

The oracle gives a domain a temporary <name> and libvirt a random <uuid>; this writes the
oracle's output to DST with those two lines (the first of each, the domain's own) put back to
INPUT's, and nothing else changed. Used by the corpus record scripts."""
import re, sys

dom, out, dst = sys.argv[1:]
src = open(dom).read()
text = open(out).read()
for tag in ("name", "uuid"):
    m = re.search(r"<%s>[^<]*</%s>" % (tag, tag), src)
    if m:
        text = re.sub(r"<%s>[^<]*</%s>" % (tag, tag), lambda _: m.group(0), text, count=1)
open(dst, "w").write(text)
