"""The chat's turns on a real terminal screen (tmux): what stays on screen after streaming and Ctrl-C."""

from __future__ import annotations

POEM = (
    "First line of the answer here.\\n\\nSecond paragraph is longer and it keeps going on.\\n\\n"
    "Third paragraph arrives later still, with more words.\\n\\nFourth one."
)


def test_ctrl_c_mid_stream_leaves_each_line_once(tmp_path, screen_for, fake_openai, write_rules):
    rules = write_rules(f'rules:\n  - when: {{user: poem}}\n    reply: "{POEM}"\n')
    fake = fake_openai(rules, chunk_delay=0.4)
    (tmp_path / "agents.yaml").write_text(
        "providers:\n  openai: {kind: openai}\nagents:\n  main: {provider: openai, model: fake-model}\n"
    )
    screen = screen_for(
        ["--new"], OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=fake.base_url, OPENAI_AGENTS_DISABLE_TRACING="1"
    )
    screen.wait_for("main>")
    screen.keys("poem", "Enter")
    screen.wait_for("Second paragraph")
    screen.keys("C-c")
    shown = screen.wait_for("turn cancelled")
    assert shown.count("First line of the answer here.") == 1, "\n" + shown
    assert "^C" not in shown and "Fourth one" not in shown
