"""Export and editing of stored items (issue 16). The tag editor: :mod:`.edit` (plan and apply), :mod:`.tagpath`
(keywords and paths into sequences), :mod:`.vr` (values checked per VR and character set), :mod:`.rewrite` (a file
written again, the untouched bytes copied). h16e's branch owns this file: at the merge, keep its version."""
