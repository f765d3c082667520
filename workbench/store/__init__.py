"""What the workbench keeps: served chat turns and their ratings (masked)."""
