"""Helpers the tests share: real brokers, rules files, payload checks, paths, images; and a
stand-in for picamera2 (the one piece of hardware these machines lack)."""
