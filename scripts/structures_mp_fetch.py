"""Rule `structures_mp_fetch`: query the Materials Project once and save the raw documents.

The key comes only from the environment variable MP_API_KEY and is never logged.
"""

from optabs.logs import setup_logging
from optabs.structures.mp import MPQuery, fetch_documents, save_documents

setup_logging(snakemake.log[0])
flt = snakemake.params.filter
mp = snakemake.params.mp
query = MPQuery(
    anions=tuple(flt["required_elements"]),
    exclude_elements=tuple(flt["excluded_elements"]),
    max_sites=flt["max_sites"],
    chunk_size=mp["chunk_size"],
    max_retries=mp["max_retries"],
    backoff_s=mp["backoff_s"],
)
save_documents(fetch_documents(query), snakemake.output[0])
