"""Key tokens: shape, entropy, and that checking one needs the exact secret."""

from __future__ import annotations

from core.keys import Role, hash_secret, new_key, secret_matches, split_token


def test_a_new_key_is_random_well_formed_and_only_its_hash_is_kept() -> None:
    first, second = new_key(), new_key()
    assert first.token != second.token and first.prefix != second.prefix
    parts = split_token(first.token)
    assert parts is not None and parts[0] == first.prefix
    assert first.secret_hash == hash_secret(parts[1]) and parts[1] not in first.secret_hash
    assert len(parts[1]) == 43  # 32 random bytes


def test_a_secret_matches_only_itself() -> None:
    made = new_key()
    _, secret = split_token(made.token) or ("", "")
    assert secret_matches(secret, made.secret_hash)
    assert not secret_matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"), made.secret_hash)


def test_malformed_tokens_are_not_looked_up() -> None:
    made = new_key()
    for bad in ("", "tlk_", made.token[:-1], made.token + "x", "Bearer " + made.token,
                made.token.replace("tlk_", "tlx_"), made.token.upper()):  # fmt: skip
        assert split_token(bad) is None, bad


def test_roles_include_the_ones_below() -> None:
    assert Role.admin.allows(Role.member) and Role.member.allows(Role.viewer)
    assert not Role.viewer.allows(Role.member) and not Role.member.allows(Role.admin)
