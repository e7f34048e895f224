"""``algm-export eval``: the research code's accuracy protocol (segm/eval/miou.py) for every backend.

This module imports nothing (the CLI reads :data:`EVAL_DESCRIPTION` before the heavy modules load).
"""

EVAL_DESCRIPTION = """\
Evaluate like the paper: mIoU of PyTorch (the checkpoint, ALGM and dense) and of every exported graph or
engine given, on the same images, by the research protocol (segm/eval/miou.py): each image resized keeping
its ratio so that its short side is im_size (OpenCV bilinear, as mmcv), sliding windows, window logits averaged
and resized to the image, softmax, argmax; mmseg's mean_iou accumulated over the dataset (ignore index 255,
classes absent from prediction and ground truth left out of the mean).

--dataset layouts (ROOT = --data):
  ade20k          [ROOT/ADEChallengeData2016/]images/validation/*.jpg + annotations/validation/*.png
                  (150 classes; label 0 ignored, the others minus 1)
  cityscapes      ROOT/leftImg8bit/val/<city>/*_leftImg8bit.png + gtFine/val/<city>/*_gtFine_labelTrainIds.png
                  (or *_gtFine_labelIds.png, mapped to the 19 trainIds)
  pascal_context  [ROOT/VOCdevkit/VOC2010/]JPEGImages/*.jpg + SegmentationClassContext/*.png for the ids in
                  ImageSets/SegmentationContext/val.txt (59 classes; label 0 ignored, the others minus 1)
  folder          ROOT/images/* + ROOT/annotations/<stem>.png (class indices, 255 ignored)
With --reference pytorch, ROOT is any folder of images (or one of the layouts, its annotations unused): each
backend is scored against PyTorch's own labels.

Prints a table (mIoU, ΔmIoU vs PyTorch ALGM, mAcc, aAcc, images/s, mean tokens per window) and writes
DIR/eval.json, DIR/per_class.csv (IoU and accuracy per class and backend) and DIR/confusion_<backend>.png
(rows: ground truth, columns: prediction, rows normalized). Unreadable images or annotations are skipped with
a note; an annotation whose size differs from its image's is an error.
"""
