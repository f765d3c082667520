"""Terminal output shared by the CLI and long runs: progress lines, quiet imports, human
durations."""
