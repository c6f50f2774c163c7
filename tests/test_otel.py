"""`telemetry:` exports spans over OTLP/HTTP to a local receiver; MCP servers get the trace as traceparent."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import PY, clean_env, run_cli

TRACED = Path(__file__).parent / "fixture_servers" / "traced.py"


@pytest.fixture
def otlp_sink():
    """A tiny OTLP/HTTP trace receiver: every span it was sent, as (scope, name, trace id, span id, parent id)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    spans: list[tuple[str, str, str, str, str]] = []
    paths: list[str] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server interface
            paths.append(self.path)
            request = ExportTraceServiceRequest()
            request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    for s in scope.spans:
                        ids = (s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex())
                        spans.append((scope.scope.name, s.name, *ids))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", spans, paths
    server.shutdown()


def test_a_run_is_one_trace_from_run_to_model_and_tool_calls_and_the_server_sees_it(tmp_path, otlp_sink):
    endpoint, spans, paths = otlp_sink
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  - when: {user: trace}\n    call: [{tool: trace_context, args: {}}]\n    reply: 'got {output}'\n"
    )
    (tmp_path / "agents.yaml").write_text(
        "providers:\n  offline: {kind: offline, rules: rules.yaml}\n"
        f"servers:\n  traced: {{transport: stdio, command: {PY}, args: ['{TRACED}']}}\n"
        "agents:\n  main: {servers: [traced]}\n"
        f"telemetry: {{otlp_endpoint: '{endpoint}', service_name: agentdeck-test}}\n"
    )
    result = run_cli("run", "trace", cwd=tmp_path)
    assert result.code == 0, result.err
    traceparent = result.out.strip().removeprefix("got ")
    _, trace_id, call_span, _ = traceparent.split("-")

    assert set(paths) == {"/v1/traces"}
    runs = [s for s in spans if s[1] == "agentdeck run"]
    assert len(runs) == 1 and runs[0][2] == trace_id
    run_span = runs[0][3]
    # run -> turn -> model request / tool call: the first turn asked for the tool, the second answered.
    turns = {s[1]: s for s in spans if s[1].startswith("agentdeck turn")}
    assert set(turns) == {"agentdeck turn 1", "agentdeck turn 2"}
    assert all(s[2] == trace_id and s[4] == run_span for s in turns.values())
    first, second = turns["agentdeck turn 1"][3], turns["agentdeck turn 2"][3]
    models = [s for s in spans if s[1] == "chat offline/offline"]
    assert len(models) == 2 and all(s[2] == trace_id for s in models)
    assert sorted(s[4] for s in models) == sorted([first, second])
    (call,) = [s for s in spans if s[1].endswith("tools/call trace_context")]
    # The server was called with the tool-call span's own context, under the turn that asked for it.
    assert (call[2], call[3], call[4]) == (trace_id, call_span, first)


def test_telemetry_without_the_sdk_is_a_clear_error(tmp_path):
    (tmp_path / "agents.yaml").write_text(
        "providers:\n  offline: {kind: offline}\nagents:\n  main: {}\n"
        "telemetry: {otlp_endpoint: 'http://127.0.0.1:9'}\n"
    )
    blocker = tmp_path / "no_otel"
    (blocker / "opentelemetry" / "sdk").mkdir(parents=True)
    (blocker / "opentelemetry" / "sdk" / "__init__.py").write_text("raise ImportError('not installed')\n")
    result = run_cli("run", "hello", cwd=tmp_path, env=clean_env(PYTHONPATH=str(blocker)))
    assert result.code == 2 and "exporting traces needs the OpenTelemetry SDK" in result.err, result.err
    assert "pip install 'agentdeck[otel]'" in result.err and "Traceback" not in result.err
    assert run_cli("config", "validate", cwd=tmp_path).code == 0  # valid: only exporting needs the SDK
    (tmp_path / "agents.yaml").write_text(
        (tmp_path / "agents.yaml").read_text().replace("http://127.0.0.1:9", "localhost:4318")
    )
    invalid = run_cli("config", "validate", cwd=tmp_path)
    assert invalid.code == 2 and "otlp_endpoint" in invalid.err
