/**
 * The login page's answer to a lost key: a command that works from the repository as written
 * (`make run` puts the CLI in .venv/bin, not on PATH; `--user-id default` is the bootstrap key's
 * user). tests/integration/test_cli.py runs exactly this string.
 */
export const LOST_KEY_COMMAND = ".venv/bin/triggers-api keys create --user-id default --name dashboard --scope keys:manage";
