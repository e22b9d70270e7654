#!/usr/bin/env python3
"""SCCs and elementary cycles of the module graph (non-test edges) from edges.json."""
import json, sys, collections, itertools
edges = json.load(open(sys.argv[1]))
inc_test = '--with-tests' in sys.argv
G = collections.defaultdict(set); where = collections.defaultdict(list)
for s, d, f, l, t, test in edges:
    if test and not inc_test: continue
    if s in ('lib',) or d in ('lib',): continue
    G[s].add(d); where[(s, d)].append('%s:%d %s' % (f, l, t))
nodes = sorted(set(G) | {d for v in G.values() for d in v})
# Tarjan
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in G[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
for v in nodes:
    if v not in idx: sc(v)
print('SCCs:')
for comp in sccs: print('  ', comp)
# elementary cycles (simple, bounded length)
def cycles(comp, maxlen=6):
    comp = set(comp); out = []
    order = sorted(comp)
    for i, s in enumerate(order):
        allowed = set(order[i:])
        stack = [(s, [s])]
        while stack:
            v, path = stack.pop()
            for w in G[v]:
                if w not in allowed: continue
                if w == s: out.append(path[:])
                elif w not in path and len(path) < maxlen: stack.append((w, path + [w]))
    return out
for comp in sccs:
    cs = cycles(comp)
    print('\nSCC', comp, len(cs), 'cycles')
    for cy in sorted(cs, key=len):
        print('  CYCLE', ' -> '.join(cy + [cy[0]]))
        for a, b in zip(cy, cy[1:] + [cy[0]]):
            w = where[(a, b)]
            print('     %s -> %s: %s%s' % (a, b, '; '.join(w[:4]), ' (+%d)' % (len(w) - 4) if len(w) > 4 else ''))
