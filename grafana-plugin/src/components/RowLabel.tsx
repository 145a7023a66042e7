import React from 'react';

import { JobRow } from '../data/rows';
import { TestIds } from '../testIds';

interface Props {
  row: JobRow;
  href?: string;
  className?: string;
}

/** Job name (job_name or job_id), as a data link when a job dashboard URL template is set. */
export function RowLabel({ row, href, className }: Props) {
  const title = row.name === row.id ? row.id : `${row.name} (${row.id})`;
  return (
    <div className={className} data-testid={TestIds.rowLabel} title={title}>
      {href ? (
        <a href={href} data-testid={TestIds.rowLink}>
          {row.name}
        </a>
      ) : (
        row.name
      )}
    </div>
  );
}
