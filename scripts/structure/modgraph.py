#!/usr/bin/env python3
"""Module-level dependency graph of src/ (one module = one file).
Edges from: `use crate::/super::/self::/cyrdeck::/child::...` (use trees expanded),
fully qualified `crate::a::b` / `super::x` / `cyrdeck::x` paths in code, and
`alias::x` paths where `alias` was brought in by a `use` of a module (or is a child module).
Lines inside #[cfg(test)] items are tagged test. Usage: modgraph.py [ROOT] [--json out]"""
import os, re, sys, json, collections

ROOT = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith('--') else '.'
SRC = os.path.join(ROOT, 'src')

def modname(path):  # src/a/b.rs -> a/b ; src/a/mod.rs -> a
    rel = os.path.relpath(path, SRC)[:-3]
    if rel.endswith('/mod'): rel = rel[:-4]
    return rel

def is_mod_file(segs):
    p = os.path.join(SRC, *segs)
    return os.path.isfile(p + '.rs') or os.path.isfile(os.path.join(p, 'mod.rs'))

def strip(src):
    """blank out comments and string/char literal contents, keep newlines/positions"""
    out = list(src); i = 0; n = len(src)
    def blank(a, b):
        for k in range(a, b):
            if out[k] != '\n': out[k] = ' '
    while i < n:
        c = src[i]
        if src.startswith('//', i):
            j = src.find('\n', i); j = n if j < 0 else j; blank(i, j); i = j
        elif src.startswith('/*', i):
            d = 1; j = i + 2
            while j < n and d:
                if src.startswith('/*', j): d += 1; j += 2
                elif src.startswith('*/', j): d -= 1; j += 2
                else: j += 1
            blank(i, j); i = j
        elif c == 'r' and re.match(r'r#*"', src[i:i+10]) and (i == 0 or not (src[i-1].isalnum() or src[i-1] == '_')):
            m = re.match(r'r(#*)"', src[i:]); h = m.group(1)
            j = src.find('"' + h, i + len(m.group(0))); j = n if j < 0 else j + 1 + len(h)
            blank(i + 1, j); i = j
        elif c == 'b' and src.startswith('b"', i) and (i == 0 or not (src[i-1].isalnum() or src[i-1]=='_')):
            i += 1
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == '\\' else 1
            blank(i + 1, j); i = j + 1
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", src[i:i+12])
            if m: blank(i + 1, i + len(m.group(0)) - 1); i += len(m.group(0))
            else: i += 1
        else:
            i += 1
    return ''.join(out)

def match_brace(s, i):  # s[i] == '{'
    d = 0
    for j in range(i, len(s)):
        if s[j] == '{': d += 1
        elif s[j] == '}':
            d -= 1
            if d == 0: return j
    return len(s) - 1

def test_ranges(s):
    """char ranges of items annotated #[cfg(test)] (modules, fns, uses, impls)"""
    rs = []
    for m in re.finditer(r'#\[cfg\(test\)\]', s):
        j = m.end()
        # item ends at first ';' before any '{', or the matching '}'
        k1 = s.find(';', j); k2 = s.find('{', j)
        if k2 >= 0 and (k1 < 0 or k2 < k1): rs.append((m.start(), match_brace(s, k2)))
        else: rs.append((m.start(), k1))
    return rs

def expand_use(tree):
    """'a::{b, c::{d, e as f}, self}' -> [['a','b'], ['a','c','d'], ['a','c','e'], ['a']]"""
    tree = re.sub(r'\s+', '', tree)
    def parse(t, prefix):
        res = []
        # split top-level by commas
        parts, d, cur = [], 0, ''
        for ch in t:
            if ch == '{': d += 1
            if ch == '}': d -= 1
            if ch == ',' and d == 0: parts.append(cur); cur = ''
            else: cur += ch
        if cur: parts.append(cur)
        for p in parts:
            if not p: continue
            if '{' in p:
                k = p.index('{'); head = p[:k].rstrip(':'); inner = p[k+1:p.rindex('}')]
                segs = [x for x in head.split('::') if x]
                res += parse(inner, prefix + segs)
            else:
                p = re.sub(r'as\w+$', '', p) if False else p
                name = p.split('as')[0] if re.search(r'\w+as\w+$', p) and '::' not in p.split('as')[-1] else p
                segs = p.split('::')
                alias = None
                last = segs[-1]
                mm = re.match(r'^(\w+)as(\w+)$', last)
                if mm and last not in ('as',):
                    # heuristic: "Xas Y" after whitespace removal; re-split
                    pass
                res.append(prefix + [x for x in segs if x])
        return res
    return parse(tree, [])

def split_alias(raw):
    # handle "x as y" before whitespace removal
    return raw

def main():
    files = []
    for dp, _, fns in os.walk(SRC):
        for f in fns:
            if f.endswith('.rs'): files.append(os.path.join(dp, f))
    files.sort()
    reexports = {}  # (module, item) -> defining module
    texts = {}
    for f in files:
        raw = open(f).read(); s = strip(raw); texts[f] = s
    # crate roots: lib.rs (crate::) and main.rs + cli/* (bin crate)
    def bin_file(f):
        m = modname(f); return m == 'main' or m == 'cli' or m.startswith('cli/')
    def resolve(f, segs):
        """absolute segs (from a crate root) -> module name or None"""
        if not segs: return None
        binc = bin_file(f)
        if segs[0] == 'crate':
            segs = segs[1:]
            root = 'main' if binc else 'lib'
        elif segs[0] == 'cyrdeck':
            segs = segs[1:]; root = 'lib'
        else:
            return None
        cur = []
        for sg in segs:
            if sg in ('self',): break
            if is_mod_file(cur + [sg]) and not (root == 'lib' and cur == [] and sg in ('main', 'cli')) \
               and not (root == 'main' and cur == [] and sg not in ('cli',)):
                cur.append(sg)
            else:
                item = sg
                mod = '/'.join(cur) if cur else root
                return reexports.get((mod, item), mod)
        return '/'.join(cur) if cur else root
    def absolutize(f, segs):
        """turn a super::/self::/child:: path into an absolute one starting with crate"""
        m = modname(f)
        if m in ('lib', 'main'): base = []
        else: base = m.split('/')
        is_modrs = f.endswith('mod.rs') or m in ('lib', 'main')
        # base = the module path of this file
        if segs[0] == 'crate' or segs[0] == 'cyrdeck': return segs
        cur = list(base)
        i = 0
        if segs[0] in ('self', 'super'):
            while i < len(segs) and segs[i] in ('self', 'super'):
                if segs[i] == 'super': cur = cur[:-1]
                i += 1
            return ['crate'] + cur + segs[i:]
        # child module reference
        if is_mod_file(base + [segs[0]]) and is_modrs:
            return ['crate'] + base + segs
        return None
    # pass 1: re-exports
    for f in files:
        s = texts[f]
        for m in re.finditer(r'\bpub\s+use\s+([^;]+);', s):
            for segs in expand_use(m.group(1)):
                a = absolutize(f, segs)
                if not a: continue
                # defining module of last item
                tgt = resolve(f, a[:-1] + ['__x__']) if len(a) > 1 else None
                tgt = resolve(f, a)
                reexports[(modname(f) if modname(f) not in ('lib',) else 'lib', segs[-1])] = tgt
    edges = []  # (src, dst, file, line, text, test)
    for f in files:
        s = texts[f]; src_mod = modname(f)
        tr = test_ranges(s)
        def is_test(pos): return any(a <= pos <= b for a, b in tr)
        def lineno(pos): return s.count('\n', 0, pos) + 1
        aliases = {}  # name -> absolute segs of a module
        used_spans = []
        for m in re.finditer(r'\buse\s+([^;]+);', s):
            body = m.group(1)
            used_spans.append((m.start(), m.end()))
            # handle "as" aliases: rewrite "X as Y"
            body2 = re.sub(r'(\w+)\s+as\s+(\w+)', lambda mm: mm.group(1) + '@' + mm.group(2), body)
            for segs in expand_use(body2):
                alias = None
                if '@' in segs[-1]:
                    a0, alias = segs[-1].split('@'); segs = segs[:-1] + [a0]
                if segs[-1] == 'self': segs = segs[:-1]; alias = alias or (segs[-1] if segs else None)
                if not segs: continue
                a = absolutize(f, segs)
                if not a: continue
                tgt = resolve(f, a)
                if tgt and tgt != src_mod:
                    edges.append((src_mod, tgt, os.path.relpath(f, ROOT), lineno(m.start()), '::'.join(segs), is_test(m.start())))
                # module alias?
                rel = a[1:] if a[0] in ('crate','cyrdeck') else a
                if a[0] == 'crate' and bin_file(f) and rel and rel[0] != 'cli': continue
                if rel and is_mod_file(rel):
                    aliases[alias or segs[-1]] = (a, is_test(m.start()), m.start())
        # qualified paths in code
        for m in re.finditer(r'(?<![\w:])((?:crate|super|self|cyrdeck|[a-z_][a-z0-9_]*)(?:::[A-Za-z_][A-Za-z0-9_]*)+)', s):
            pos = m.start()
            if any(a <= pos <= b for a, b in used_spans): continue
            segs = m.group(1).split('::')
            if segs[0] in aliases:
                a = aliases[segs[0]][0] + segs[1:]
            elif segs[0] in ('crate', 'super', 'self', 'cyrdeck'):
                a = absolutize(f, segs)
            else:
                a = absolutize(f, segs)  # child module
            if not a: continue
            tgt = resolve(f, a)
            if tgt and tgt != src_mod:
                edges.append((src_mod, tgt, os.path.relpath(f, ROOT), lineno(pos), m.group(1), is_test(pos)))
    return edges

if __name__ == '__main__':
    edges = main()
    out = None
    if '--json' in sys.argv: out = sys.argv[sys.argv.index('--json') + 1]
    if out: json.dump(edges, open(out, 'w'), indent=0)
    for e in edges: print('%s -> %s\t%s:%d\t%s%s' % (e[0], e[1], e[2], e[3], e[4], '\t[test]' if e[5] else ''))
