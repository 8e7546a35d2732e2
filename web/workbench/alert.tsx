// A refusal or failure the person must read, announced to screen readers as it appears.
export function Alert({ text }: { text?: string }) {
  return text ? (
    <p role="alert" class="error">
      {text}
    </p>
  ) : null;
}
