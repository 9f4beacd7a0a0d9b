"""Publishing quality (issue 11): each post's language and direction, Markdown links that say whose
post and when, no block-character sparklines, themes as a list, and the public audience."""

from __future__ import annotations

from click.testing import CliRunner

from aggregator.cli import cli


def test_a_bad_report_audience_is_a_config_error_naming_the_key(project):
    cfg = project / "config.toml"
    cfg.write_text(cfg.read_text().replace('[report]\n', '[report]\naudience = "everyone"\n'))
    result = CliRunner().invoke(cli, ["--config", str(cfg), "status"])
    assert result.exit_code == 2
    assert "report.audience" in result.output and '"public"' in result.output
