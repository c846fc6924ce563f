"""pytest plugin (`-p pytest_skip_exit`): a session that skipped anything and
failed nothing exits 77, which ctest's SKIP_RETURN_CODE reports as a skip, not
a pass. Failures keep their own exit status, so a skip never hides one."""

SKIP_EXIT = 77


def pytest_sessionfinish(session, exitstatus):
    if exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped"):
        session.exitstatus = SKIP_EXIT
