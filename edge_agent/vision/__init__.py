"""The vision stage: frames in, faces with age and gender estimates out."""
