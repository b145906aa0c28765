"""The Gradio layout of the debugger and its event handlers (thin: the work is in
``web.data``, ``web.charts`` and ``web.session``).

Each browser tab holds its own ``DebuggerSession`` in a ``gr.State``; handlers are plain
functions that Gradio runs in its worker threads with no concurrency limit, so tabs never
queue behind each other and agent sessions (OpenEnv's own executors) are never blocked.
"""

from __future__ import annotations

import json
from typing import Any

import gradio as gr
import pandas as pd

from metric_tracker_rl import constants as C
from metric_tracker_rl.analysis import GENERATOR_METHODS, REGISTRY, MethodError, parse_generator_specs
from metric_tracker_rl.config import ConfigError
from metric_tracker_rl.environment import DEBUG_ENV_VAR, debug_enabled_from_env
from metric_tracker_rl.rows import ROW_FIELDS
from metric_tracker_rl.tasks import NAMED_TASKS
from metric_tracker_rl.web import DEBUGGER_TITLE, data
from metric_tracker_rl.web.session import DebuggerSession

FIRST_METHOD = "task_overview"  # what the reset message recommends ("Start with task_overview.")
ALL_GENERATOR_ENTITIES = "(all entities)"
GENERATOR_COLUMNS = ["method_name", "metric_name", "threshold_multiplier"]
EVENT_OPTS: dict[str, Any] = {"concurrency_limit": None}  # per-tab state: nothing to serialise

INTRO = (
    "Pick a named task (or a free config) and reset; investigate with the same read-only methods an "
    "agent calls (each call is a step of the budget; the charts are free); build a submission from "
    "the rows a detection method flagged, typed rows or generator methods, preview it, submit it and "
    "read the grader's feedback. Only evidence earns credit: a row counts only if its detection "
    "method flagged it earlier in this episode; generators format rows, they do not confirm them. "
    "Every browser tab is its own episode."
)

# OpenEnv's theme caps the page at 1120px; the charts want more room, but never more than the
# window. A table never widens the page: its box does not take its content's width
# (inline-size containment), so a wide table scrolls inside it. Gradio sizes each column from
# its header, so headers keep whole words; cells wrap between words.
CSS = """
.gradio-container { max-width: min(1680px, 100%) !important; }
.gradio-container .table-container { contain: inline-size; }
.gradio-container th .header {
  white-space: nowrap !important; overflow-wrap: normal !important; word-break: normal !important;
}
#task-table { contain: inline-size; overflow-x: auto; }
#task-table th, #task-table td { overflow-wrap: normal !important; word-break: normal !important; }
#task-table td:first-child { white-space: nowrap; }
"""


def _frame(headers: list[str], rows: list[list[Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=headers) if rows else pd.DataFrame(columns=headers)


def _empty(headers: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame(columns=headers or [""])


def _markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    lines = [headers, ["---"] * len(headers), *rows]
    return "\n".join("| " + " | ".join(map(cell, line)) + " |" for line in lines)


# --- builders of the reactive pieces -----------------------------------------------------


def _charts(session: DebuggerSession, date: str | None, event: str | None) -> list[Any]:
    """The four figures; a chart whose inputs did not change since its last render is skipped."""
    from metric_tracker_rl.web import charts  # Plotly loads on the first render, not at start

    episode = session.episode
    if episode is None:
        return [gr.skip()] * 4
    date = date if date in episode.date_index else episode.dates[0]
    event = event if event in C.EVENTS else C.EVENTS[0]
    marks = tuple((d, tuple(m)) for d, m in session.marks.items())
    keys = {
        "daily": (id(episode), marks),
        "hourly": (id(episode), date, event, tuple(session.marks.get(date, ()))),
        "funnel": (id(episode), date),
    }
    stale = {name for name, key in keys.items() if session.chart_keys.get(name) != key}
    session.chart_keys.update(keys)
    series = data.daily_series(episode) if "daily" in stale else None
    return [
        charts.daily_counts_figure(series, session.marks) if series else gr.skip(),
        charts.rates_figure(series, session.marks) if series else gr.skip(),
        charts.hourly_figure(data.hourly_profile(episode, date, event), session.marks.get(date))
        if "hourly" in stale
        else gr.skip(),
        charts.funnel_figure(data.funnel_shape(episode, date)) if "funnel" in stale else gr.skip(),
    ]


def _overview_markdown(session: DebuggerSession) -> str:
    observation = session.reset_observation
    if observation is None:
        return ""
    config = observation.config
    shown = ", ".join(
        f"{k}={config[k]}"
        for k in ("task_id", "seed", "scenario_family", "difficulty", "anomaly_density", "anomaly_count")
        if config.get(k) is not None
    )
    return (
        f"**Episode** {config['start_date']} .. {config['end_date']} · {shown}\n\n{observation.instruction}"
    )


def _debug_tables(session: DebuggerSession) -> tuple[pd.DataFrame, pd.DataFrame]:
    snapshot = session.debug_snapshot()
    if snapshot is None:
        return _empty(), _empty()
    expected = snapshot["expected_payload"]
    schedule = snapshot["anomaly_schedule"]
    return (
        _frame(*data.result_table(expected)) if expected else _empty(list(ROW_FIELDS)),
        _frame(*data.result_table(schedule)) if schedule else _empty(["date", "anomaly_type"]),
    )


def _generators_frame(session: DebuggerSession) -> pd.DataFrame:
    rows = [
        [g["method_name"], g.get("metric_name") or "", g["threshold_multiplier"]] for g in session.generators
    ]
    return _frame(GENERATOR_COLUMNS, rows)


def _rows_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return _frame(list(ROW_FIELDS), [[r.get(f) for f in ROW_FIELDS] for r in rows])


def _hand_rows(table: Any) -> list[dict[str, Any]]:
    if table is None:
        return []
    if isinstance(table, pd.DataFrame):
        return data.rows_from_table(
            table.astype(object).where(table.notna(), None).values.tolist(), list(table.columns)
        )
    return data.rows_from_table(table, list(ROW_FIELDS))


# --- the layout --------------------------------------------------------------------------


def build_debugger(
    web_manager: Any = None,
    action_fields: Any = None,
    metadata: Any = None,
    is_chat_env: bool = False,
    title: str | None = None,
    quick_start_md: str | None = None,
    *,
    debug: bool | None = None,
) -> gr.Blocks:
    """The debugger's ``gr.Blocks`` (OpenEnv's ``gradio_builder`` signature).

    OpenEnv's shared ``web_manager`` environment is not used: every tab gets its own.
    The debug panel exists only when ``debug`` (default: ``METRIC_TRACKER_DEBUG``) is on.
    """
    debug = debug_enabled_from_env() if debug is None else debug

    def _session(session: DebuggerSession | None) -> DebuggerSession:
        return session if session is not None else DebuggerSession(debug=debug)

    controls = data.all_argument_controls()
    names = [c.name for c in controls]
    if len(set(names)) != len(names):  # element ids are "arg-<name>"
        raise RuntimeError(f"two argument kinds share a name in the registry: {names}")
    first_task = next(iter(NAMED_TASKS))
    defaults = data.task_defaults(first_task)
    choices = data.reset_choices()
    threshold_control = next(
        c for c in data.argument_controls(GENERATOR_METHODS[0]) if c.name == "threshold_multiplier"
    )

    with gr.Blocks(title=title or DEBUGGER_TITLE, fill_width=True) as demo:
        session_state = gr.State(None)
        gr.HTML(f"<style>{CSS}</style>", padding=False, container=False)
        gr.Markdown(f"# {DEBUGGER_TITLE}\n{INTRO}")
        status = gr.Markdown("Loading the first task…", elem_id="status-bar")

        # --- episode: task picker and reset controls ------------------------------------
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                gr.Markdown("### Episode")
                task = gr.Dropdown(data.task_choices(), value=first_task, label="task", elem_id="task-picker")
                with gr.Row():
                    seed = gr.Textbox(  # a text box: a typo is refused by name, not replaced
                        str(defaults["seed"]),
                        label="seed",
                        placeholder="a whole number >= 0",
                        elem_id="reset-seed",
                    )
                    difficulty = gr.Dropdown(
                        choices["difficulty"],
                        value=defaults["difficulty"],
                        label="difficulty",
                        elem_id="reset-difficulty",
                    )
                scenario_family = gr.Dropdown(
                    choices["scenario_family"],
                    value=defaults["scenario_family"],
                    label="scenario_family",
                    elem_id="reset-scenario-family",
                )
                with gr.Row():
                    anomaly_density = gr.Dropdown(
                        choices["anomaly_density"],
                        value=defaults["anomaly_density"],
                        label="anomaly_density",
                        elem_id="reset-anomaly-density",
                    )
                    anomaly_count = gr.Dropdown(
                        choices["anomaly_count"],
                        value=defaults["anomaly_count"],
                        label="anomaly_count",
                        elem_id="reset-anomaly-count",
                    )
                reset_button = gr.Button("Reset episode", variant="primary", elem_id="reset-button")
            with gr.Column(scale=2, min_width=480):
                # A plain table: its description column takes the room left and wraps.
                gr.Markdown(f"**Named tasks**\n\n{_markdown_table(*data.task_table())}", elem_id="task-table")
                overview = gr.Markdown(elem_id="episode-overview")

        # --- analysis methods, their result, and charts ---------------------------------
        # The result takes two thirds of the row (as the task table above), so that a wide
        # result shows its first columns whole; the charts have the page's width below.
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                gr.Markdown("### Analysis methods")
                method = gr.Dropdown(
                    data.method_choices(), value=FIRST_METHOD, label="method", elem_id="method-picker"
                )
                method_help = gr.Markdown(REGISTRY[FIRST_METHOD].description, elem_id="method-help")
                inputs = [_control_component(control, FIRST_METHOD) for control in controls]
                run_button = gr.Button("Run method", variant="primary", elem_id="run-method")
                run_message = gr.Markdown(elem_id="run-message")
            with gr.Column(scale=2, min_width=480):
                result_table = gr.Dataframe(
                    _empty(),
                    label="Result",
                    interactive=False,
                    wrap=True,
                    max_height=420,
                    elem_id="result-table",
                )
                add_rows_button = gr.Button(
                    "Add the result's rows to the submission", elem_id="add-result-rows"
                )
                with gr.Accordion("Result as JSON", open=False):
                    result_json = gr.JSON(elem_id="result-json")
        gr.Markdown("### Charts")
        with gr.Row():
            chart_date = gr.Dropdown([], label="date (hourly and funnel charts)", elem_id="chart-date")
            chart_event = gr.Dropdown(
                list(C.EVENTS), value=C.EVENTS[0], label="event (hourly chart)", elem_id="chart-event"
            )
        with gr.Row(equal_height=False):
            daily_plot = gr.Plot(elem_id="chart-daily", show_label=False, min_width=480)
            rates_plot = gr.Plot(elem_id="chart-rates", show_label=False, min_width=480)
        with gr.Row(equal_height=False):
            hourly_plot = gr.Plot(elem_id="chart-hourly", show_label=False, min_width=480)
            funnel_plot = gr.Plot(elem_id="chart-funnel", show_label=False, min_width=480)

        # --- submission builder ---------------------------------------------------------
        gr.Markdown("### Submission")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=320):
                generator_method = gr.Dropdown(
                    list(GENERATOR_METHODS),
                    value=GENERATOR_METHODS[0],
                    label="generator method",
                    elem_id="gen-method",
                )
                with gr.Row():
                    generator_metric = gr.Dropdown(
                        [ALL_GENERATOR_ENTITIES, *data.entity_choices(GENERATOR_METHODS[0])],
                        value=ALL_GENERATOR_ENTITIES,
                        label="metric_name",
                        elem_id="gen-metric",
                    )
                    generator_threshold = gr.Textbox(
                        data.number_text(threshold_control),
                        label="threshold_multiplier",
                        placeholder=threshold_control.accepted(),
                        elem_id="gen-threshold",
                    )
                with gr.Row():
                    add_generator_button = gr.Button("Add generator", elem_id="add-generator")
                    clear_generators_button = gr.Button("Clear generators", elem_id="clear-generators")
                generators_table = gr.Dataframe(
                    _empty(GENERATOR_COLUMNS),
                    label="payload_generators",
                    interactive=False,
                    elem_id="generators-table",
                )
            with gr.Column(scale=2, min_width=480):
                hand_rows = gr.Dataframe(
                    _empty(list(ROW_FIELDS)),
                    headers=list(ROW_FIELDS),
                    label="classifications: rows typed by hand or added from a result (blank lines ignored)",
                    interactive=True,
                    column_count=len(ROW_FIELDS),
                    type="array",
                    wrap=True,
                    elem_id="hand-rows",
                )
                clear_rows_button = gr.Button("Clear typed rows", elem_id="clear-rows")
        with gr.Row():
            preview_button = gr.Button("Preview submission (1 step)", elem_id="preview-button")
            submit_button = gr.Button("Submit for grading", variant="primary", elem_id="submit-button")
        feedback = gr.Markdown(elem_id="feedback")
        with gr.Row(equal_height=False):
            breakdown_table = gr.Dataframe(
                _empty(), label="Reward breakdown", interactive=False, elem_id="reward-breakdown"
            )
            sent_rows_table = gr.Dataframe(
                _empty(list(ROW_FIELDS)),
                label="Generated rows (sent with the submission)",
                interactive=False,
                wrap=True,
                max_height=360,
                elem_id="generated-rows",
            )

        # --- debug panel (operator only) -------------------------------------------------
        debug_outputs: list[gr.Dataframe] = []
        if debug:
            with gr.Accordion(
                f"Debug view ({DEBUG_ENV_VAR}=1): hidden truth", open=False, elem_id="debug-panel"
            ):
                gr.Markdown(
                    "Expected rows and the anomaly schedule of this episode. Not part of benchmark play."
                )
                debug_outputs = [
                    gr.Dataframe(
                        _empty(),
                        label="expected rows",
                        interactive=False,
                        wrap=True,
                        elem_id="debug-expected",
                    ),
                    gr.Dataframe(
                        _empty(),
                        label="anomaly schedule",
                        interactive=False,
                        wrap=True,
                        elem_id="debug-schedule",
                    ),
                ]

        if quick_start_md:
            with gr.Accordion("Connect an agent to this server", open=False):
                gr.Markdown(quick_start_md)

        # --- handlers --------------------------------------------------------------------
        date_components = [
            component for c, component in zip(controls, inputs, strict=True) if c.kind == "date"
        ]
        reset_outputs = [
            session_state,
            status,
            overview,
            chart_date,
            *date_components,
            result_table,
            result_json,
            run_message,
            feedback,
            breakdown_table,
            sent_rows_table,
            generators_table,
            hand_rows,
            *debug_outputs,
        ]
        chart_outputs = [daily_plot, rates_plot, hourly_plot, funnel_plot]

        def reset(session, task_id, seed_value, family, level, density, count):
            session = _session(session)
            try:
                kwargs = data.reset_arguments(task_id, seed_value, family, level, density, count)
                session.reset(**kwargs)
            except (ConfigError, ValueError, TypeError) as err:
                message = f"**Reset refused:** {err}"
                if session.observation is None:  # nothing to keep showing
                    return [session, message, *[gr.skip()] * (len(reset_outputs) - 2)]
                return [session, f"{data.budget_line(session.observation)}  \n{message}"] + [gr.skip()] * (
                    len(reset_outputs) - 2
                )
            assert session.episode is not None
            dates = list(session.episode.dates)
            return [
                session,
                data.budget_line(session.observation),
                _overview_markdown(session),
                gr.update(choices=dates, value=dates[0]),
                *[gr.update(choices=dates, value=dates[0]) for _ in date_components],
                _empty(),
                None,
                "",
                "",
                _empty(),
                _empty(list(ROW_FIELDS)),
                _generators_frame(session),
                _empty(list(ROW_FIELDS)),
                *(_debug_tables(session) if debug else ()),
            ]

        def render_charts(session, date, event):
            if session is None:
                return [gr.skip()] * 4
            with session.lock:
                return _charts(session, date, event)

        def pick_task(task_id):
            values = data.task_defaults(task_id)
            if not values:
                return [gr.skip()] * 5
            return [
                str(values["seed"]),
                values["scenario_family"],
                values["difficulty"],
                values["anomaly_density"],
                values["anomaly_count"],
            ]

        def pick_method(method_name):
            method_name = method_name or FIRST_METHOD
            shown = {c.key: c for c in data.argument_controls(method_name)}
            updates = []
            for control in controls:
                own = shown.get(control.key)
                if own is None:
                    updates.append(gr.update(visible=False))
                    continue
                label = control.name + ("" if own.required else " (optional)")
                update: dict[str, Any] = {"visible": True, "label": label}
                if own.kind != "json":
                    update["info"] = own.description
                if own.kind in ("entity", "entities"):
                    entity_names = data.entity_choices(method_name)
                    update["choices"] = entity_names
                    update["value"] = (
                        [] if own.kind == "entities" else (entity_names[0] if own.required else None)
                    )
                elif own.kind == "choice":
                    update["choices"] = own.dropdown_choices()
                    update["value"] = own.dropdown_choices()[0]
                elif own.kind in ("integer", "number"):
                    update["value"] = data.number_text(own)
                    update["placeholder"] = own.accepted()
                elif own.kind == "json":
                    update["value"] = data.json_example(method_name, own)
                updates.append(gr.update(**update))
            spec = REGISTRY[method_name]
            return [f"**{spec.kind}** · {spec.description}", *updates]

        def run(session, method_name, *values):
            session = _session(session)
            if session.episode is None:
                return [session, "Reset an episode first.", gr.skip(), gr.skip(), gr.skip(), gr.skip()]
            by_key = {c.key: v for c, v in zip(controls, values, strict=True)}
            try:
                args = data.method_arguments(method_name, by_key)
            except data.ArgumentError as err:  # a typo: said by name, nothing spent
                message = f"**Not sent (no budget used):** {err}"
                return [session, gr.skip(), message, gr.skip(), gr.skip(), gr.skip()]
            observation = session.run_method(method_name, args)
            result = observation.analysis_result or {}
            if "result" in result:
                table = _frame(*data.result_table(result["result"]))
                rows = len(session.last_result_rows)
                note = f"`{method_name}` ran." + (
                    f" {rows} row(s) can be added to the submission." if rows else ""
                )
            else:
                table = _empty()
                note = f"**Error:** {observation.message}"
            date = args.get("date")
            return [
                session,
                data.budget_line(observation),
                note,
                table,
                result,
                gr.update(value=date) if date in session.episode.date_index else gr.skip(),
            ]

        def add_result_rows(session, table):
            if session is None or not session.last_result_rows:
                return (
                    gr.skip(),
                    "The last result has no rows to add (run a generator or a flagged detector).",
                )
            rows = _hand_rows(table)
            keys = {(r.get("date"), r.get("entity_type"), r.get("entity_name")) for r in rows}
            added = [
                r
                for r in session.last_result_rows
                if (r["date"], r["entity_type"], r["entity_name"]) not in keys
            ]
            return _rows_frame(rows + added), f"Added {len(added)} row(s) to the typed rows."

        def pick_generator(method_name):
            return gr.update(
                choices=[ALL_GENERATOR_ENTITIES, *data.entity_choices(method_name)],
                value=ALL_GENERATOR_ENTITIES,
            )

        def add_generator(session, method_name, metric_name, threshold):
            session = _session(session)
            try:
                multiplier = data.parse_number(threshold_control, threshold)
            except data.ArgumentError as err:
                return session, gr.skip(), gr.skip(), f"**Generator not added:** {err}"
            spec: dict[str, Any] = {
                "method_name": method_name,
                "threshold_multiplier": threshold_control.default if multiplier is None else multiplier,
            }
            if metric_name and metric_name != ALL_GENERATOR_ENTITIES:
                spec["metric_name"] = metric_name
            try:
                parse_generator_specs([*session.generators, spec])
            except MethodError as err:
                return session, gr.skip(), gr.skip(), f"**Generator not added:** {err}"
            session.generators.append(spec)
            return session, _generators_frame(session), _rows_frame(session.generated_rows()), ""

        def clear_generators(session):
            if session is not None:
                session.generators = []
            return _empty(GENERATOR_COLUMNS), _empty(list(ROW_FIELDS))

        def preview(session, table):
            session = _session(session)
            if session.episode is None:
                return "Reset an episode first.", gr.skip(), gr.skip(), gr.skip()
            observation = session.preview(_hand_rows(table))
            return (
                data.budget_line(observation),
                data.preview_markdown(observation),
                _empty(),
                _rows_frame(session.generated_rows()) if observation.submission_preview else gr.skip(),
            )

        def submit(session, table):
            session = _session(session)
            if session.episode is None:
                return "Reset an episode first.", gr.skip(), gr.skip(), gr.skip()
            observation = session.submit(_hand_rows(table))
            return (
                data.budget_line(observation),
                data.feedback_markdown(observation),
                _frame(*data.breakdown_table(observation.reward_breakdown))
                if observation.reward_breakdown
                else _empty(),
                _rows_frame(observation.generated_rows),
            )

        reset_inputs = [
            session_state,
            task,
            seed,
            scenario_family,
            difficulty,
            anomaly_density,
            anomaly_count,
        ]
        chart_inputs = [session_state, chart_date, chart_event]
        demo.load(reset, reset_inputs, reset_outputs, **EVENT_OPTS).then(
            render_charts, chart_inputs, chart_outputs, **EVENT_OPTS
        )
        reset_button.click(reset, reset_inputs, reset_outputs, **EVENT_OPTS).then(
            render_charts, chart_inputs, chart_outputs, **EVENT_OPTS
        )
        task.change(
            pick_task, task, [seed, scenario_family, difficulty, anomaly_density, anomaly_count], **EVENT_OPTS
        )
        method.change(pick_method, method, [method_help, *inputs], **EVENT_OPTS)
        run_button.click(
            run,
            [session_state, method, *inputs],
            [session_state, status, run_message, result_table, result_json, chart_date],
            **EVENT_OPTS,
        ).then(render_charts, chart_inputs, chart_outputs, **EVENT_OPTS)
        gr.on([chart_date.input, chart_event.input], render_charts, chart_inputs, chart_outputs, **EVENT_OPTS)
        add_rows_button.click(
            add_result_rows, [session_state, hand_rows], [hand_rows, run_message], **EVENT_OPTS
        )
        generator_method.change(pick_generator, generator_method, generator_metric, **EVENT_OPTS)
        add_generator_button.click(
            add_generator,
            [session_state, generator_method, generator_metric, generator_threshold],
            [session_state, generators_table, sent_rows_table, feedback],
            **EVENT_OPTS,
        )
        clear_generators_button.click(
            clear_generators, session_state, [generators_table, sent_rows_table], **EVENT_OPTS
        )
        clear_rows_button.click(lambda: _empty(list(ROW_FIELDS)), None, hand_rows, **EVENT_OPTS)
        preview_button.click(
            preview,
            [session_state, hand_rows],
            [status, feedback, breakdown_table, sent_rows_table],
            **EVENT_OPTS,
        )
        submit_button.click(
            submit,
            [session_state, hand_rows],
            [status, feedback, breakdown_table, sent_rows_table],
            **EVENT_OPTS,
        )
    return demo


def _control_component(control: data.ArgumentControl, method_name: str) -> gr.components.Component:
    """The input for one argument, shown only for the methods that take it."""
    own = {c.key: c for c in data.argument_controls(method_name)}.get(control.key)
    visible = own is not None
    label = control.name + ("" if control.required else " (optional)")
    common: dict[str, Any] = {"label": label, "visible": visible, "elem_id": f"arg-{control.name}"}
    if control.kind != "json":
        common["info"] = control.description
    if control.kind == "date":
        return gr.Dropdown([], **common)
    if control.kind in ("entity", "entities"):
        entity_names = data.entity_choices(method_name if visible else "")
        return gr.Dropdown(entity_names, multiselect=control.kind == "entities", **common)
    if control.kind == "choice":
        return gr.Dropdown(control.dropdown_choices(), value=control.dropdown_choices()[0], **common)
    if control.kind in ("integer", "number"):
        # A text box, parsed by data.parse_number: gr.Number would turn a typo into the
        # default silently, and refuse an out-of-range value with an error badge and a traceback.
        shown = own if own is not None else control
        return gr.Textbox(data.number_text(shown), placeholder=shown.accepted(), **common)
    return gr.Code(
        json.dumps(None) if not visible else data.json_example(method_name, control),
        language="json",
        **common,
    )
