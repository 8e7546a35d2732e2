// Attachments of the chart (reports' rendered forms, documents): fetched with the person's token from
// the service's copy; a PDF shown inline page by page with pdf.js, an image as itself, text as text.
import { useEffect, useRef, useState } from 'preact/hooks';
import { getDocument, GlobalWorkerOptions } from 'pdfjs-dist';
import { formatDate } from './cases.js';
import { attachment } from './fhir.js';
import { dateOf, type Found } from './records.js';
import { Alert } from './alert.js';

GlobalWorkerOptions.workerSrc = new URL('pdf.worker.min.mjs', location.href).href;

function PdfPages({ blob, title }: { blob: Blob; title: string }) {
  const holder = useRef<HTMLDivElement>(null);
  const [pages, setPages] = useState<number>();
  useEffect(() => {
    let cancelled = false;
    void (async () => {
      const pdf = await getDocument({ data: new Uint8Array(await blob.arrayBuffer()) }).promise;
      setPages(pdf.numPages);
      for (let n = 1; n <= pdf.numPages && !cancelled; n++) {
        const page = await pdf.getPage(n);
        const viewport = page.getViewport({ scale: 1.3 });
        const canvas = document.createElement('canvas');
        canvas.width = viewport.width;
        canvas.height = viewport.height;
        canvas.setAttribute('role', 'img');
        canvas.setAttribute('aria-label', `${title}, page ${n} of ${pdf.numPages}`);
        const text = (await page.getTextContent()).items.map((i) => ('str' in i ? i.str : '')).join(' ');
        canvas.textContent = text; // what a screen reader and a search find
        holder.current?.append(canvas);
        await page.render({ canvas, viewport }).promise;
        canvas.dataset.rendered = 'true';
      }
    })();
    return () => {
      cancelled = true;
    };
  }, [blob]);
  return (
    <div class="pdf" ref={holder} data-pages={pages}>
      {pages === undefined && <p class="loading">Opening the PDF…</p>}
    </div>
  );
}

function Viewer({ found }: { found: Found }) {
  const [blob, setBlob] = useState<Blob>();
  const [url, setUrl] = useState<string>();
  const [text, setText] = useState<string>();
  const [error, setError] = useState<string>();
  const type = found.attachment.contentType ?? '';
  const title = found.attachment.title ?? 'Attachment';
  useEffect(() => {
    let objectUrl: string | undefined;
    attachment(found.attachment.url as string).then(
      async (b) => {
        setBlob(b);
        if (type.startsWith('image/')) setUrl((objectUrl = URL.createObjectURL(b)));
        else if (type.startsWith('text/')) setText(await b.text());
      },
      (err: Error) => setError(err.message),
    );
    return () => objectUrl && URL.revokeObjectURL(objectUrl);
  }, [found]);
  if (error) return <Alert text={error} />;
  if (!blob) return <p class="loading">Fetching {title}…</p>;
  if (type === 'application/pdf') return <PdfPages blob={blob} title={title} />;
  if (url) return <img src={url} alt={title} class="attachment-image" />;
  if (text !== undefined) return <pre class="attachment-text">{text}</pre>;
  return (
    <p>
      {title} is a {type || 'file'} the browser cannot show here.
    </p>
  );
}

export function Attachments({ found }: { found: Found[] }) {
  const [open, setOpen] = useState<number>();
  if (!found.length) return <p>No attachments were retrieved.</p>;
  return (
    <div class="attachments">
      <ul>
        {found.map((f, i) => (
          <li>
            <button
              type="button"
              aria-expanded={open === i}
              aria-controls="attachment-view"
              onClick={() => setOpen(open === i ? undefined : i)}
              data-title={f.attachment.title}
            >
              {f.attachment.title ?? 'Attachment'} ({f.attachment.contentType ?? 'unknown type'}, {formatDate(dateOf(f.record))})
            </button>
          </li>
        ))}
      </ul>
      <div id="attachment-view" aria-live="polite">
        {open !== undefined && <Viewer found={found[open]} key={open} />}
      </div>
    </div>
  );
}
