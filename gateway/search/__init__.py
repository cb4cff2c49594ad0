"""Search: every input mode (text, image, audio example, tracks) ranks candidates on its own;
`fusion` merges the rankings into one; `engine` runs the modes against the stores."""
