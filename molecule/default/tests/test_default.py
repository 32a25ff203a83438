def test_systemd_runs(host):
    assert host.run("systemctl is-system-running --wait").stdout.strip() in ("running", "degraded")
