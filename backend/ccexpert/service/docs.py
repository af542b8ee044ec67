"""``/docs``: one self-contained HTML page made from the OpenAPI schema (no script, no CDN: it renders offline).

It lists every endpoint with its request fields (JSON and multipart), its responses and the error codes;
``/openapi.json`` stays the machine-readable contract.
"""

from __future__ import annotations

from html import escape
from typing import Any

from .errors import ERROR_CODES

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}h3{margin-bottom:.3em}
code,.path{font-family:ui-monospace,monospace}
.op{border:1px solid #ddd;border-radius:6px;padding:.2em 1em 1em;margin:1.2em 0}
.method{display:inline-block;min-width:4em;font-weight:bold;color:#fff;background:#357;border-radius:4px;
text-align:center;margin-right:.5em}
.POST{background:#383}table{border-collapse:collapse;width:100%;margin:.4em 0}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f4f4f4}
"""


def render_docs(schema: dict) -> str:
    info = schema.get("info", {})
    title = escape(str(info.get("title", "API")))
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{_STYLE}</style></head><body>',
        f"<h1>{title} <small>{escape(str(info.get('version', '')))}</small></h1>",
        f"<p>{escape(str(info.get('description', '')))}</p>",
        '<p>Machine-readable contract: <a href="/openapi.json"><code>/openapi.json</code></a> (OpenAPI '
        f'{escape(str(schema.get("openapi", "")))}). Errors are <code>{{"error": {{"code", "message", '
        '"id"}}</code>; <code>id</code> names the pair at fault when there is one.</p>',
        "<h2>Endpoints</h2>",
    ]
    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            parts.append(_operation(schema, path, method, operation))
    parts.append("<h2>Error codes</h2><table><tr><th>status</th><th>code</th><th>meaning</th></tr>")
    for code, (status, meaning) in sorted(ERROR_CODES.items(), key=lambda item: (item[1][0], item[0])):
        parts.append(f"<tr><td>{status}</td><td><code>{escape(code)}</code></td><td>{escape(meaning)}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)


def _operation(schema: dict, path: str, method: str, operation: dict) -> str:
    verb = method.upper()
    out = [
        f'<div class="op"><h3><span class="method {verb}">{verb}</span><span class="path">{escape(path)}</span>'
        f'</h3><p class="sig"><code>{verb} {escape(path)}</code> &mdash; '
        f"{escape(str(operation.get('summary', '')))}</p>"
    ]
    if operation.get("description"):
        out.append(f"<p>{escape(str(operation['description']))}</p>")
    body = operation.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        out.append(f"<p>Request body, <code>{escape(media)}</code>:</p>")
        out.append(_fields(schema, content.get("schema", {})))
    out.append("<table><tr><th>status</th><th>meaning</th></tr>")
    for status, response in sorted(operation.get("responses", {}).items()):
        out.append(f"<tr><td>{escape(str(status))}</td><td>{escape(str(response.get('description', '')))}</td></tr>")
    out.append("</table></div>")
    return "".join(out)


def _resolve(schema: dict, node: dict) -> dict:
    seen = 0
    while "$ref" in node and seen < 16:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = schema.get("components", {}).get("schemas", {}).get(name, {})
        seen += 1
    return node


def _fields(schema: dict, node: dict, prefix: str = "", depth: int = 0) -> str:
    node = _resolve(schema, node)
    rows = _rows(schema, node, prefix, depth)
    return (
        "<table><tr><th>field</th><th>type</th><th>required</th><th>constraints</th><th>description</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _rows(schema: dict, node: dict, prefix: str, depth: int) -> list[str]:
    rows = []
    required = set(node.get("required", []))
    for name, prop in node.get("properties", {}).items():
        prop = _resolve(schema, prop)
        full = prefix + name
        rows.append(
            f"<tr><td><code>{escape(full)}</code></td><td>{escape(_type(schema, prop))}</td>"
            f"<td>{'yes' if name in required else 'no'}</td><td>{escape(_constraints(prop))}</td>"
            f"<td>{escape(str(prop.get('description', '')))}</td></tr>"
        )
        items = _resolve(schema, prop.get("items", {}))
        if depth < 3 and items.get("properties"):
            rows.extend(_rows(schema, items, full + "[].", depth + 1))
    return rows


def _type(schema: dict, prop: dict) -> str:
    if "anyOf" in prop:
        return " | ".join(_type(schema, _resolve(schema, p)) for p in prop["anyOf"])
    kind = str(prop.get("type", "object"))
    if kind == "array":
        return f"array of {_type(schema, _resolve(schema, prop.get('items', {})))}"
    if prop.get("format") == "binary":
        return "file"
    return kind


def _constraints(prop: dict) -> str:
    found: list[Any] = []
    for option in [prop, *prop.get("anyOf", [])]:
        for key in ("minimum", "maximum", "minItems", "maxItems", "minLength", "maxLength", "pattern", "const"):
            if key in option:
                found.append(f"{key} {option[key]}")
        if "items" in option and "pattern" in option["items"]:
            found.append(f"pattern {option['items']['pattern']}")
    return ", ".join(found)
