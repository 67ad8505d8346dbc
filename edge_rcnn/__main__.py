import sys

from edge_rcnn.cli import main

sys.exit(main())
