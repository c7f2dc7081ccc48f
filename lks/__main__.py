import sys

from lks.cli.main import main

if __name__ == "__main__":  # not when a spawned worker process (lks.kube.http.offload) imports it
    sys.exit(main())
