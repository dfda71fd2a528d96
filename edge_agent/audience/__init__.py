"""The audience stage: tracks people across frames and turns them into aggregate counts."""
