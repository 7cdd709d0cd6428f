"""Rule `structures_mp_fetch`: query the Materials Project once and save the raw documents.

The key comes only from the environment variable MP_API_KEY and is never logged. Documents
already fetched per anion are kept in params.partial_dir, so an interrupted query resumes.
"""

from optabs.logs import logged
from optabs.structures.mp import MPQuery, fetch_documents, save_documents

with logged(snakemake.log[0]):
    flt = snakemake.params.filter
    query = MPQuery.from_config("mp", {
        "anions": flt["required_elements"],
        "exclude_elements": flt["excluded_elements"],
        "max_sites": flt["max_sites"],
        **snakemake.params.mp,
    })
    save_documents(fetch_documents(query, partial_dir=snakemake.params.partial_dir), snakemake.output[0])
