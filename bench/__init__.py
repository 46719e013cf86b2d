
import os

# Read before bench.run points REQUESTS_CA_BUNDLE at its receiver's test CA: pip needs the machine's own.
ORIGINAL_CA_BUNDLE = os.environ.get("REQUESTS_CA_BUNDLE")
