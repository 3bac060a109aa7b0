"""The report's Jinja2 templates: one self-contained HTML page and a Markdown twin.

The HTML has no script and no external resource (charts are base64 PNGs, the
style is inline), so it opens the same from a file, a CI artifact or a mail.
"""

from __future__ import annotations

import jinja2

HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { margin-bottom: 0.2rem; }
.meta { color: #555; margin-bottom: 1rem; }
table { border-collapse: collapse; margin: 0.4rem 0 0.8rem; font-size: 0.78rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
tr.fail td { background: #fde8e8; }
.mark-new { color: #b00; font-weight: bold; }
.mark-known { color: #a60; font-weight: bold; }
section { display: flex; flex-wrap: wrap; gap: 1rem; }
section { border-top: 1px solid #ddd; padding-top: 0.8rem; }
section .chart { flex: 3 1 640px; min-width: 0; }
section .chart img { max-width: 100%; height: auto; }
section .facts { flex: 2 1 420px; min-width: 0; overflow-x: auto; }
.method { color: #555; font-size: 0.8rem; }
.note { font-style: italic; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<div class="meta">
build {{ summary.build }} · {{ mode }} · seed {{ summary.seed }} ·
started {{ summary.started_at_utc }} · wall {{ wall }} · exit code {{ summary.exit_code }}
</div>
<h2>Verdicts</h2>
{% if verdicts %}
<table>
<tr><th>leg</th><th>invariant</th><th>status</th><th>mark</th><th>summary</th></tr>
{% for v in verdicts %}
<tr class="{{ 'ok' if v.ok else 'fail' }}"><td>{{ v.leg }}</td><td>{{ v.invariant }}</td>
<td>{{ v.status }}</td>
<td class="{{ 'mark-new' if v.mark == 'NEW' else 'mark-known' }}">{{ v.mark }}</td>
<td>{{ v.summary }}</td></tr>
{% endfor %}
</table>
{% else %}
<p class="note">no verdicts in summary.json</p>
{% endif %}
<p>known findings: {{ known or "none" }} · new failures: {{ new or "none" }}</p>
{% for s in sections %}
<section id="{{ s.name }}">
<div class="chart">
<h2>{{ s.title }}</h2>
{% if s.png %}<img alt="{{ s.title }}" src="data:image/png;base64,{{ s.png }}">
{% else %}<p class="note">no data for this chart</p>{% endif %}
</div>
<div class="facts">
{% for t in s.tables %}{% if t.rows %}
<table>
<tr>{% for h in t.headers %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>
{% endfor %}
</table>
{% endif %}{% endfor %}
{% for n in s.notes %}<p class="note">{{ n }}</p>{% endfor %}
{% for m in s.methods %}<p class="method">method: {{ m }}</p>{% endfor %}
</div>
</section>
{% endfor %}
</body>
</html>
"""

MARKDOWN = """# {{ title }}

build {{ summary.build }} · {{ mode }} · seed {{ summary.seed }} \
· started {{ summary.started_at_utc }} · wall {{ wall }} · exit code {{ summary.exit_code }}

## Verdicts

{% if verdicts -%}
| leg | invariant | status | mark | summary |
|---|---|---|---|---|
{% for v in verdicts -%}
| {{ v.leg | cell }} | {{ v.invariant | cell }} | {{ v.status }} | {{ v.mark }} \
| {{ v.summary | cell }} |
{% endfor %}
{%- else -%}
no verdicts in summary.json
{%- endif %}

known findings: {{ known or "none" }} · new failures: {{ new or "none" }}
{% for s in sections %}
## {{ s.title }}

{% if s.png %}![{{ s.title }}](charts/{{ s.name }}.png){% else %}(no data for this chart){% endif %}
{% for t in s.tables %}{% if t.rows %}
| {{ t.headers | join(" | ") }} |
|{% for h in t.headers %}---|{% endfor %}
{% for row in t.rows -%}
| {% for c in row %}{{ c | cell }} | {% endfor %}
{% endfor %}{% endif %}{% endfor %}
{%- for n in s.notes %}
_{{ n }}_
{% endfor %}
{%- for m in s.methods %}
method: {{ m }}
{% endfor %}
{% endfor %}
"""


def _cell(value: object) -> str:
    """Markdown table cell: pipes escaped, newlines folded."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def environment(*, html: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        autoescape=html, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    env.filters["cell"] = _cell
    return env
