"""Hostile templates: each must be refused (at save or at render) or rendered within the time and size limits.

Shared by the sandbox, API, editor preview and Python client tests and by bench/hostile_templates.py.
Each entry is (id, template, variables); the variables are the caller's data the template is rendered with.
"""

from __future__ import annotations

ITEMS = list(range(10_000))
TEXT = "lorem ipsum " * 2_000  # 24,000 characters
DEEP = 1_000

PAYLOADS: list[tuple[str, str, dict]] = [
    # CPU: loops, nested loops over the caller's data and over values built in the template
    ("nested-loops-2", "{% for a in items %}{% for b in items %}{% endfor %}{% endfor %}", {"items": ITEMS}),
    (
        "nested-loops-3",
        "{% for a in items %}{% for b in items %}{% for c in items %}{% endfor %}{% endfor %}" "{% endfor %}",
        {"items": ITEMS},
    ),  # fmt: skip
    (
        "nested-loops-output",
        "{% for a in items %}{% for b in items %}{{ a }}{% endfor %}{% endfor %}",
        {"items": ITEMS},
    ),  # fmt: skip
    ("nested-range", "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", {}),
    ("nested-string-chars", "{% for a in text %}{% for b in text %}{% endfor %}{% endfor %}", {"text": TEXT}),
    ("built-string-loops", "{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}", {}),
    ("built-list-loops", "{% set l = [0] * 100000 %}{% for a in l %}{% for b in l %}{% endfor %}{% endfor %}", {}),
    (
        "loop-over-batch",
        "{% for row in items|batch(100) %}{% for a in items %}{% endfor %}{% endfor %}",
        {"items": ITEMS},
    ),  # fmt: skip
    ("sort-in-loop", "{% for a in items %}{{ items|sort|first }}{% endfor %}", {"items": ITEMS}),
    ("unique-in-loop", "{% for a in items %}{{ items|unique|list|length }}{% endfor %}", {"items": ITEMS}),
    ("join-in-loop", "{% for a in items %}{{ items|join(',')|length }}{% endfor %}", {"items": ITEMS}),
    ("recursive-loop", "{% for x in items recursive %}{{ loop(items) }}{% endfor %}", {"items": [1, 2]}),
    (
        "macro-loop",
        "{% macro m(n) %}{% for i in range(10000) %}{{ n }}{% endfor %}{% endmacro %}"
        "{% for i in range(10000) %}{{ m(i)|length }}{% endfor %}",
        {},
    ),  # fmt: skip
    (
        "select-map-chain",
        "{% for a in items %}{{ items|map('string')|select('equalto', 'x')|list }}{% endfor %}",
        {"items": ITEMS},
    ),  # fmt: skip
    ("striptags-backtrack", "{{ ('<' * 190000)|striptags|length }}", {}),
    ("urlize-backtrack", "{{ ('a.' * 90000)|urlize|length }}", {}),
    ("wordwrap-long", "{{ ('a ' * 99000)|wordwrap(1)|length }}", {}),
    (
        "in-operator-quadratic",
        "{% for a in items %}{{ ('a' * 100000) in ('a' * 199999) }}{% endfor %}",
        {"items": ITEMS},
    ),  # fmt: skip
    # CPU in one operation: big integers and floats
    ("pow-big", "{{ 2 ** 100000 }}", {}),
    ("pow-huge", "{{ 9 ** 9 ** 9 }}", {}),
    ("pow-tower", "{{ (9 ** 999) ** 999 }}", {}),
    ("pow-float", "{{ 2.0 ** 100000 }}", {}),
    (
        "mul-square-loop",
        "{% set ns = namespace(x=7) %}{% for i in range(40) %}{% set ns.x = ns.x * ns.x %}{% endfor %}" "{{ ns.x }}",
        {},
    ),  # fmt: skip
    ("big-int-print", "{{ 10 ** 4400 }}", {}),
    ("big-int-literal", "{{ " + "9" * 5000 + " }}", {}),
    ("big-int-caller", "{{ n * n * n }}", {"n": 10**4000}),
    ("int-of-long-string", "{{ ('9' * 100000)|int }}", {}),
    ("div-zero", "{{ 1 // 0 }}", {}),
    ("float-overflow", "{{ 1e308 * 10 }}", {}),
    # Memory: values that grow
    ("str-mul", "{{ 'a' * 1000000000 }}", {}),
    ("list-mul", "{{ [1] * 1000000000 }}", {}),
    ("nested-list-mul", "{% set x = [[1] * 10000] * 10000 %}{{ x|string|length }}", {}),
    ("str-mul-chain", "{{ 'a' * 100000 * 100000 }}", {}),
    ("format-brace-width", "{{ '{:1000000000}'.format(1) }}", {}),
    ("format-brace-nested", "{{ '{0:{1}}'.format(1, 1000000000) }}", {}),
    ("format-map-width", "{{ '{x:>900000000}'.format_map({'x': 1}) }}", {}),
    ("format-percent-width", "{{ '%900000000d' % 1 }}", {}),
    ("format-percent-star", "{{ '%*d' % (900000000, 1) }}", {}),
    ("format-filter-width", "{{ '%900000000s'|format('x') }}", {}),
    ("format-precision", "{{ '%.900000000f' % 1.0 }}", {}),
    ("join-huge-separator", "{{ items|join('x' * 100000) }}", {"items": ITEMS}),
    ("join-method", "{{ ('x' * 100000).join(items|map('string')) }}", {"items": ITEMS}),
    (
        "string-of-large-structure",
        "{% set a = [text] * 20 %}{% set b = [a] * 20 %}{{ b|string|length }}",
        {"text": TEXT},
    ),  # fmt: skip
    ("tojson-large", "{% set a = [text] * 20 %}{{ [a, a, a, a]|tojson|length }}", {"text": TEXT}),
    ("pprint-large", "{% set a = [text] * 20 %}{{ [a, a, a, a]|pprint|length }}", {"text": TEXT}),
    (
        "namespace-doubling-str",
        "{% set ns = namespace(x='ab') %}{% for i in range(40) %}"
        "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x|length }}",
        {},
    ),  # fmt: skip
    (
        "namespace-doubling-plus",
        "{% set ns = namespace(x='ab') %}{% for i in range(40) %}"
        "{% set ns.x = ns.x + ns.x %}{% endfor %}{{ ns.x|length }}",
        {},
    ),  # fmt: skip
    (
        "namespace-doubling-list",
        "{% set ns = namespace(x=[1]) %}{% for i in range(80) %}" "{% set ns.x = [ns.x, ns.x] %}{% endfor %}{{ ns.x }}",
        {},
    ),  # fmt: skip
    (
        "namespace-list-plus",
        "{% set ns = namespace(x=[1]) %}{% for i in range(40) %}"
        "{% set ns.x = ns.x + ns.x %}{% endfor %}{{ ns.x|length }}",
        {},
    ),  # fmt: skip
    (
        "concat-doubling",
        "{% set a = text ~ text %}{% set b = a ~ a %}{% set c = b ~ b %}{% set d = c ~ c %}"
        "{% set e = d ~ d %}{% set f = e ~ e %}{{ f|length }}",
        {"text": TEXT},
    ),  # fmt: skip
    ("center-huge", "{{ 'x'|center(900000000) }}", {}),
    ("ljust-huge", "{{ 'x'.ljust(900000000) }}", {}),
    ("zfill-huge", "{{ '1'.zfill(900000000) }}", {}),
    ("indent-huge", "{{ ('a\n' * 1000)|indent(1000000) }}", {}),
    ("replace-growth", "{{ text|replace('', 'x' * 100) }}", {"text": TEXT}),
    ("replace-method-growth", "{{ text.replace(' ', ' ' * 10000) }}", {"text": TEXT}),
    ("expandtabs-huge", "{{ ('\t' * 1000).expandtabs(1000000) }}", {}),
    ("batch-fill", "{{ [1]|batch(900000000, 0)|list|length }}", {}),
    ("slice-fill", "{{ [1]|slice(900000000, 0)|list|length }}", {}),
    ("range-huge", "{{ range(1000000000)|list|length }}", {}),
    ("output-flood", "{% for i in range(10000) %}{{ text }}{% endfor %}", {"text": TEXT}),
    ("list-of-range", "{{ range(10000)|list * 1000 }}", {}),
    (
        "dict-growth",
        "{% set ns = namespace(d={}) %}{% for i in range(60) %}{% set ns.d = {'a': ns.d, 'b': ns.d} %}"
        "{% endfor %}{{ ns.d }}",
        {},
    ),  # fmt: skip
    # Escape attempts: reaching Python internals, other templates, the environment
    ("class-mro", "{{ ''.__class__.__mro__[1].__subclasses__() }}", {}),
    ("attr-filter", "{{ x|attr('__class__') }}", {"x": "a"}),
    ("format-attr", "{{ '{0.__class__.__mro__}'.format(x) }}", {"x": 1}),
    ("format-filter-attr", "{{ '%s'|format(x.__class__) }}", {"x": 1}),
    ("globals-via-init", "{{ namespace.__init__.__globals__ }}", {}),
    ("self-dict", "{{ self.__dict__ }}", {}),
    ("cycler-globals", "{{ cycler.__init__.__globals__.os.popen('id').read() }}", {}),
    ("lipsum-globals", "{{ lipsum.__globals__['os'].popen('id').read() }}", {}),
    ("range-globals", "{{ range.__globals__ }}", {}),
    ("dict-mutation", "{% set d = {} %}{{ d.update({'a': 1}) }}", {}),
    ("list-append", "{% set l = [] %}{{ l.append(1) }}", {}),
    ("str-mod-attr", "{{ '%(a)s' % {'a': x.__class__} }}", {"x": 1}),
    ("include", "{% include 'other' %}", {}),
    ("import", "{% import 'macros' as m %}", {}),
    ("extends", "{% extends 'base' %}", {}),
    ("loop-internals", "{% for x in items %}{{ loop.__class__.__init__.__globals__ }}{% endfor %}", {"items": [1]}),
    ("unknown-filter", "{{ x | nosuchfilter }}", {"x": 1}),
    ("unknown-test", "{% if x is nosuchtest %}y{% endif %}", {"x": 1}),
    ("unknown-filter-in-map", "{{ items|map('nosuchfilter')|list }}", {"items": [1]}),
    # Recursion and nesting
    ("macro-recursion", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", {}),
    (
        "macro-fan-out",
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
        {},
    ),  # fmt: skip
    ("deep-parentheses", "{{ " + "(" * DEEP + "1" + ")" * DEEP + " }}", {}),
    ("deep-if", "{% if 1 %}" * DEEP + "x" + "{% endif %}" * DEEP, {}),
    ("deep-for", "{% for a in items %}" * DEEP + "x" + "{% endfor %}" * DEEP, {"items": [1]}),
    ("deep-list-literal", "{{ " + "[" * DEEP + "]" * DEEP + " }}", {}),
    ("deep-filter-chain", "{{ x" + "|upper" * DEEP + " }}", {"x": "a"}),
    ("deep-caller-data", "{{ data }}", {"data": __import__("functools").reduce(lambda a, _: [a], range(900), [])}),
    ("long-template", "x" * 200_000, {}),
]


# Four at once on one web process (apps/api/tests/test_hostile_concurrency.py and bench/fetch.py's
# under-attack rounds): (template, variables), each refused with a 400.
CONCURRENT: list[tuple[str, dict]] = [
    ("{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}", {}),  # wall clock
    # Long calls in C and Python, each about 0.25 s on a quiet machine, three in a row: over the 200 ms limit
    # however fast the machine (one alone finished within the limit on a fast one and answered 200).
    ("{{ ('a ' * 99000)|wordwrap(1)|wordwrap(1)|wordwrap(1)|length }}", {}),
    ("{% for a in items %}{% for b in items %}{% endfor %}{% endfor %}", {"items": list(range(3000))}),
    ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}", {}),
]
