"""The API token: from KEFU_API_TOKEN, else generated once into var/secrets/api-token, readable by its owner only."""

import stat

from kefu.core.secrets import api_token, token_path


def test_generated_once_with_mode_0600(tmp_path):
    token, path = api_token(tmp_path, environ={})
    assert path == token_path(tmp_path) and len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert api_token(tmp_path, environ={}) == (token, path)  # the desk and the cluster read the same one


def test_environment_wins(tmp_path):
    assert api_token(tmp_path, environ={"KEFU_API_TOKEN": " s3cret "}) == ("s3cret", None)
    assert not token_path(tmp_path).exists()
