#!/usr/bin/env python3
"""Reference chat-template renderings with Python jinja2, configured as
Hugging Face transformers' `_compile_jinja_template` does
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
`raise_exception`, `strftime_now`, its `tojson`), and rendered with the same
variables as `apply_chat_template` (messages, tools=None, documents=None,
add_generation_prompt, bos_token, eos_token).

Templates: every `tokenizer.chat_template` found in the GGUF files under
shared/, plus the templates written below. Writes tests/data/reference.json,
which tests/render.rs compares byte for byte with ryot-chat.

Re-run:  pip install jinja2 gguf
         python3 crates/ryot-chat/tests/render_reference.py
"""
import glob
import json
import os
from datetime import datetime

import gguf
import jinja2
import jinja2.ext
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.abspath(os.environ.get("RYOT_SHARED") or os.path.join(HERE, "../../../../shared"))

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)
# Block tags on their own lines (trim_blocks / lstrip_blocks), namespace,
# Python string methods, loop filters, break, tojson with and without indent.
BLOCKS = """{%- set ns = namespace(system='') -%}
{% for m in messages %}
    {% if m.role == 'system' %}
        {% set ns.system = m.content.strip() %}
    {% endif %}
{% endfor %}
{% if ns.system %}
<<SYS>>{{ ns.system }}<</SYS>>
{% endif %}
{% for m in messages if m.role != 'system' %}
    {% if loop.first %}{{ bos_token }}{% endif %}
    {% if loop.index > 3 %}
        {% break %}
    {% endif %}
{{ m.role | upper }}: {{ m.content }}
{% endfor %}
{{ messages | tojson }}
{{ {'n': messages | length, 'roles': messages | map(attribute='role') | list, 'x': 1.5, 'gen': add_generation_prompt, 'tools': tools} | tojson(indent=2) }}
{% if documents is none and tools is none %}no tools{% endif %}
{% if add_generation_prompt %}ASSISTANT:{% endif %}
"""

MESSAGES = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are a helpful assistant."},
     {"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "  Be brief.  "},
     {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Tell me a joke."},
     {"role": "assistant", "content": "No."},
     {"role": "user", "content": "Please?"}],
    [{"role": "user", "content": "héllo 你好 🦙\n  tab\there \"quoted\" back\\slash <b>&amp;</b>"},
     {"role": "assistant", "content": "Ça va? ✓ — ok\u2028"}],
    [{"role": "user", "content": ""}],
    [{"role": "user", "content": "  padded  \n"},
     {"role": "assistant", "content": ""},
     {"role": "user", "content": "\n"}],
    [{"role": "assistant", "content": "I speak first."}],
]


def compile_template(src):
    def raise_exception(message):
        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(src)


def gguf_templates():
    out = []
    for path in sorted(glob.glob(os.path.join(SHARED, "**", "*.gguf"), recursive=True)):
        r = gguf.GGUFReader(path)
        f = r.fields.get("tokenizer.chat_template")
        if f is None:
            continue
        tokens = r.fields["tokenizer.ggml.tokens"].contents()

        def tok(key):
            k = r.fields.get(key)
            return tokens[int(k.contents())] if k is not None else ""

        out.append({"name": os.path.basename(path), "gguf": os.path.relpath(path, SHARED),
                    "template": f.contents(), "bos_token": tok("tokenizer.ggml.bos_token_id"),
                    "eos_token": tok("tokenizer.ggml.eos_token_id")})
    return out


def main():
    templates = gguf_templates()
    for name, src, bos, eos in [("chatml", CHATML, "", "<|im_end|>"),
                                ("llama3", LLAMA3, "<|begin_of_text|>", "<|eot_id|>"),
                                ("mistral", MISTRAL, "<s>", "</s>"),
                                ("gemma", GEMMA, "<bos>", "<eos>"),
                                ("blocks", BLOCKS, "<s>", "</s>")]:
        templates.append({"name": name, "template": src, "bos_token": bos, "eos_token": eos})
    cases = []
    for t in templates:
        tmpl = compile_template(t["template"])
        for mi, msgs in enumerate(MESSAGES):
            for agp in (False, True):
                case = {"template": t["name"], "messages": mi, "add_generation_prompt": agp}
                try:
                    case["output"] = tmpl.render(messages=msgs, tools=None, documents=None,
                                                 add_generation_prompt=agp,
                                                 bos_token=t["bos_token"], eos_token=t["eos_token"])
                except TemplateError as e:
                    case["error"] = str(e)
                cases.append(case)
    out = {"jinja2": jinja2.__version__, "templates": templates, "messages": MESSAGES, "cases": cases}
    path = os.path.join(HERE, "data", "reference.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    os.replace(path + ".tmp", path)
    n_err = sum("error" in c for c in cases)
    print(f"wrote {path}: {len(templates)} templates, {len(cases)} cases ({n_err} raise)")


if __name__ == "__main__":
    main()
