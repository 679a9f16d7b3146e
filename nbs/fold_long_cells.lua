-- Fold long code cells on the docs site: a code cell longer than MAX_LINES lines is shown collapsed
-- ("Show the code"), as if it carried `#| code-fold: true`. A cell that sets code-fold itself keeps it.
-- User filters run before Quarto's own, whose code-folding step reads the attribute set here.
-- tools/docs_check.py reads MAX_LINES from this file to fold the same cells in the offline pages.
local MAX_LINES = 30

function CodeBlock(block)
  if not block.classes:includes("cell-code") or block.attributes["code-fold"] ~= nil then
    return nil
  end
  local _, newlines = block.text:gsub("\n", "")
  if newlines + 1 > MAX_LINES then
    block.attributes["code-fold"] = "true"
    return block
  end
end
