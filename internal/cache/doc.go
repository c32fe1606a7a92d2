// Package cache locates ktstr's cache directory, where kernels and
// schedulers are built and fetched: $KTSTR_CACHE, else
// $XDG_CACHE_HOME/ktstr (an absolute XDG_CACHE_HOME only, as the XDG
// base directory specification says), else $HOME/.cache/ktstr. There is
// no other fallback: without any of them there is no cache, never a
// shared directory such as /tmp, where another user could plant the
// kernel or the schedulers a run picks up. scripts/cache-dir is the same
// rule for the shell scripts.
package cache
