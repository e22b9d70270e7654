#!/usr/bin/env python3
"""Functions longer than N lines (signature line to closing brace) outside #[cfg(test)] items."""
import os, re, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from modgraph import strip, match_brace, test_ranges
ROOT = sys.argv[1] if len(sys.argv) > 1 else '.'
N = int(sys.argv[2]) if len(sys.argv) > 2 else 120
rows = []
for dp, _, fns in os.walk(os.path.join(ROOT, 'src')):
    for fn in fns:
        if not fn.endswith('.rs'): continue
        p = os.path.join(dp, fn); s = strip(open(p).read()); tr = test_ranges(s)
        for m in re.finditer(r'\bfn\s+(\w+)', s):
            if any(a <= m.start() <= b for a, b in tr): continue
            # body: first '{' after signature at paren depth 0 (skip where-clauses); a ';' first = no body
            j = m.end(); d = 0
            while j < len(s):
                ch = s[j]
                if ch in '(<[': d += 1
                elif ch in ')>]': d -= 1
                elif ch == ';' and d <= 0: j = -1; break
                elif ch == '{' and d <= 0: break
                j += 1
            if j < 0: continue
            e = match_brace(s, j)
            l0 = s.count('\n', 0, m.start()) + 1; l1 = s.count('\n', 0, e) + 1
            if l1 - l0 + 1 > N:
                rows.append((l1 - l0 + 1, os.path.relpath(p, ROOT), m.group(1), l0, l1))
for r in sorted(rows, reverse=True): print('%4d  %s:%d-%d  %s' % (r[0], r[1], r[3], r[4], r[2]))
