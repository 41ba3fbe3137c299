"""run_bench.py's view of what PostgreSQL does: the SELECT statements a call sends, their
EXPLAIN (ANALYZE, BUFFERS) for the plans of the misses, and PostgreSQL's own planning and
execution time beside each figure (analytics_bench.py uses captured_selects too)."""

import contextlib
import json


def captured_selects(fn) -> list[tuple[str, list]]:
    """The SELECT statements `fn` sends (e.g. one log_page call): what is EXPLAINed is exactly
    what the code under test runs, whatever shape it gives its queries."""
    from django.db import connection

    captured = []

    def wrapper(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(("SELECT", "(SELECT", "WITH")):
            captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        fn()
    return captured


def explain(fn) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the statements `fn` sends; if `fn` itself times out,
    EXPLAIN without ANALYZE (the plan, not a run to the end in an I/O stall)."""
    from django.db import connection

    from logs.selectors import QueryTimeout

    try:
        statements = captured_selects(fn)
        analyze = "ANALYZE, BUFFERS"
    except QueryTimeout:
        statements = captured_selects_until_timeout(fn)
        analyze = "COSTS"
    out = []
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(f"EXPLAIN ({analyze}) " + sql, params)
            out.append("\n".join(row[0] for row in cursor.fetchall()))
    return "\n-- next statement --\n".join(out)


def captured_selects_until_timeout(fn) -> list[tuple[str, list]]:
    from django.db import connection

    from logs.selectors import QueryTimeout

    captured = []

    def wrapper(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(("SELECT", "(SELECT", "WITH")):
            captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper), contextlib.suppress(QueryTimeout):
        fn()
    return [(sql, params) for sql, params in captured if "set_config(" not in sql]


def server_ms(fn) -> dict:
    """Planning and execution time as PostgreSQL reports them (one EXPLAIN ANALYZE of each
    statement `fn` runs, summed): the rest of a timing is Django, the driver, the round
    trips and the machine's noise. Under the log statement timeout: {"timeout": True} when
    `fn` or its EXPLAIN ANALYZE runs past it."""
    from django.db import connection

    from logs.selectors import QueryTimeout, statement_timeout

    planning = execution = 0.0
    try:
        statements = captured_selects(fn)
        with statement_timeout(), connection.cursor() as cursor:
            for sql, params in statements:
                if "set_config(" in sql:
                    continue
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
                plan = cursor.fetchone()[0]
                plan = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
                planning += plan["Planning Time"]
                execution += plan["Execution Time"]
    except QueryTimeout:
        return {"timeout": True}
    return {"planning_ms": round(planning, 2), "execution_ms": round(execution, 2)}
